"""Tunnel vs direct QUIC on loopback, in one run: round-trip latency and throughput.

    python -m bench.tunnel [--count N] [--size BYTES] [--rounds R]     # also: nox -s bench

Both sides use the `Connection` API (one CBOR map per message): direct is a QUIC connection;
tunnel is a `TunnelTransport` session over a tunnel link on a QUIC connection (with a network
token). The two alternate in one run; prints each figure side by side with the ratio
(throughput: tunnel/direct; latency: direct/tunnel, so that 1.0 means "as fast").
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

from trimicro.session import Connection, ConnectionClosed
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import TunnelTransport, open_tunnel

Factory = Callable[[], AbstractAsyncContextManager[Connection]]


async def _echo(conn: Connection) -> None:
    try:
        while True:
            await conn.send(await conn.receive())
    except ConnectionClosed:
        pass


@asynccontextmanager
async def direct() -> AsyncIterator[Connection]:
    transport = QuicTransport()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, _echo, "127.0.0.1:0")
        conn = await transport.connect(nursery, bound)
        yield conn
        await conn.aclose()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def tunnelled() -> AsyncIterator[Connection]:
    async with (
        open_tunnel(QuicTransport(), address="127.0.0.1:0", token="bench") as a,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(TunnelTransport(a).serve, _echo, "echo")
        async with open_tunnel(QuicTransport(), peers=[a.address or ""], token="bench") as b:
            await b.wait_links(1)
            conn = await TunnelTransport(b).connect(nursery, "echo")
            yield conn
            await conn.aclose()
        nursery.cancel_scope.cancel()


async def latency(conn: Connection, count: int) -> float:
    samples = []
    for i in range(count):
        start = trio.current_time()
        await conn.send({"i": i})
        await conn.receive()
        samples.append(trio.current_time() - start)
    return statistics.median(samples)


async def throughput(conn: Connection, count: int, size: int) -> float:
    payload = b"x" * size
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def sender() -> None:
            for i in range(count):
                await conn.send({"i": i, "b": payload})

        nursery.start_soon(sender)
        for _ in range(count):
            await conn.receive()
    return count / (trio.current_time() - start)


async def measure(factory: Factory, count: int, size: int) -> tuple[float, float, float]:
    async with factory() as conn:
        await latency(conn, 50)  # warm up
        rtt = await latency(conn, count)
        small = await throughput(conn, count * 4, 100)
        large = await throughput(conn, count, size)
    return rtt, small, large


async def main(count: int, size: int, rounds: int) -> None:
    """Direct and tunnel alternate for `rounds` rounds; each figure is the median."""
    runs: dict[str, list[tuple[float, float, float]]] = {"direct": [], "tunnel": []}
    for _ in range(rounds):
        runs["direct"].append(await measure(direct, count, size))
        runs["tunnel"].append(await measure(tunnelled, count, size))
    d, t = ([statistics.median(column) for column in zip(*runs[k], strict=True)] for k in runs)
    print(f"tunnel vs direct QUIC, loopback, median of {rounds} alternating rounds")
    print(f"{'':24}{'direct':>12}{'tunnel':>12}{'ratio':>8}")
    print(f"{'round trip (median)':24}{d[0] * 1e6:>9.0f} us{t[0] * 1e6:>9.0f} us"
          f"{d[0] / t[0]:>7.2f}x")  # fmt: skip
    for label, i in (("msg/s, 100 B", 1), (f"msg/s, {size} B", 2)):
        print(f"{label:24}{d[i]:>12.0f}{t[i]:>12.0f}{t[i] / d[i]:>7.2f}x")
    print("ratio: tunnel/direct for throughput, direct/tunnel for latency (1.0 = as fast)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.tunnel")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trio.run(main, args.count, args.size, args.rounds)
