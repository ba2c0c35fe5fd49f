"""Tunnel vs direct QUIC on loopback, in one run: round-trip latency and throughput.

    python -m bench.tunnel [--count N] [--size BYTES]      # also: nox -s bench

Both sides use the `Connection` API (one CBOR map per message): direct is a QUIC connection;
tunnel is a `TunnelTransport` session over a tunnel link on a QUIC connection. Prints each
figure and the tunnel/direct ratio (throughput: higher is better; latency: the ratio is
direct/tunnel so that 1.0 means "as fast").
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from trimicro.session import Connection, ConnectionClosed
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import TunnelTransport, open_tunnel


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


async def main(count: int, size: int) -> None:
    results = {}
    for name, factory in (("direct", direct), ("tunnel", tunnelled)):
        async with factory() as conn:
            await latency(conn, 50)  # warm up
            rtt = await latency(conn, count)
            small = await throughput(conn, count * 4, 100)
            large = await throughput(conn, count, size)
        results[name] = (rtt, small, large)
        print(f"{name:7} rtt {rtt * 1e6:8.0f} us   {small:8.0f} msg/s (100 B)   "
              f"{large:8.0f} msg/s ({size} B)")  # fmt: skip
    (d_rtt, d_small, d_large), (t_rtt, t_small, t_large) = results["direct"], results["tunnel"]
    print(f"ratio   rtt {d_rtt / t_rtt:.2f}x   throughput {t_small / d_small:.2f}x (100 B)   "
          f"{t_large / d_large:.2f}x ({size} B)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=16 * 1024)
    args = parser.parse_args()
    trio.run(main, args.count, args.size)
