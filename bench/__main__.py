"""Unary-call benchmark: trimicro over TCP beside a raw trio TCP echo floor, same run.

    nox -s bench            # or: python -m bench [--seconds 2]

For each payload (small, 64 KiB) and concurrency (1, 64 in flight on one connection) it
measures calls/s and p50/p99 latency for a raw length-prefixed echo on trio sockets (the floor:
framing and a dispatcher, nothing else) and for `client.call` through a real service, and
prints trimicro/floor ratios. Performance targets live here, never in the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import struct
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import trio

import trimicro
from trimicro.wrappers import Metrics, Wrapper, circuit_breaker, tracing

HEADER = struct.Struct(">II")  # length, call id


@attrs.frozen
class Result:
    calls: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(call: Callable[[], Awaitable[None]], concurrency: int, seconds: float) -> Result:
    """Run `call` from `concurrency` tasks for `seconds`; collect per-call latency."""
    latencies: list[float] = []
    deadline = trio.current_time() + seconds

    async def worker() -> None:
        while trio.current_time() < deadline:
            start = trio.current_time()
            await call()
            latencies.append(trio.current_time() - start)

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return Result(len(latencies), trio.current_time() - started, latencies)


# -- the floor: framed echo with a dispatcher, on raw trio sockets ------------------------


async def _receive_exactly(stream: trio.SocketStream, n: int, buffer: bytearray) -> bytes:
    while len(buffer) < n:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        buffer += chunk
    data = bytes(buffer[:n])
    del buffer[:n]
    return data


async def _echo_server(stream: trio.SocketStream) -> None:
    buffer = bytearray()
    try:
        while True:
            length, call_id = HEADER.unpack(await _receive_exactly(stream, HEADER.size, buffer))
            body = await _receive_exactly(stream, length, buffer)
            await stream.send_all(HEADER.pack(length, call_id) + body)
    except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def floor_case(payload: bytes, concurrency: int, seconds: float) -> Result:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, _echo_server, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        waiting: dict[int, trio.Event] = {}
        lock = trio.Lock()
        ids = iter(range(1, 1 << 31))

        async def reader() -> None:
            buffer = bytearray()
            while True:
                length, call_id = HEADER.unpack(await _receive_exactly(stream, HEADER.size, buffer))
                await _receive_exactly(stream, length, buffer)
                waiting.pop(call_id).set()

        nursery.start_soon(reader)

        async def call() -> None:
            call_id, done = next(ids), trio.Event()
            waiting[call_id] = done
            async with lock:
                await stream.send_all(HEADER.pack(len(payload), call_id) + payload)
            await done.wait()

        result = await drive(call, concurrency, seconds)
        nursery.cancel_scope.cancel()
    await stream.aclose()
    return result


# -- trimicro ------------------------------------------------------------------------------


def _echo_service(name: str, transport: str = "tcp://") -> trimicro.Service:
    service = trimicro.Service("bench", registry=f"memory://{name}", transport=transport)

    @service.endpoint("Bench.Echo")
    async def echo(req: bytes) -> bytes:
        return req

    return service


def _wrappers() -> list[Wrapper]:
    metrics = Metrics()
    return [circuit_breaker(), metrics.wrapper, tracing()]


async def trimicro_case(
    payload: bytes,
    concurrency: int,
    seconds: float,
    *,
    mode: str = "address",
    transport: str = "tcp://",
) -> Result:
    """`mode`: "address" (selector bypassed), "selector" (registry cache + selector),
    "wrappers" (selector plus circuit breaker, metrics and tracing on the client)."""
    name = f"bench-{len(payload)}-{concurrency}-{mode}-{transport[:4]}"
    wrappers = _wrappers() if mode == "wrappers" else []
    async with (
        _echo_service(name, transport).run() as running,
        trimicro.open_client(
            registry=f"memory://{name}", transport=transport, wrappers=wrappers
        ) as client,
    ):
        address = f"{transport}{running.address}" if mode == "address" else None

        async def call() -> None:
            await client.call("bench", "Bench.Echo", payload, address=address)

        await drive(call, concurrency, min(0.3, seconds))  # warm up connection and caches
        return await drive(call, concurrency, seconds)


def _row(label: str, result: Result) -> str:
    return (
        f"  {label:<9} {result.rate:>10,.0f} calls/s   p50 {result.percentile(0.5) * 1e3:7.3f} ms"
        f"   p99 {result.percentile(0.99) * 1e3:7.3f} ms"
    )


async def main(seconds: float) -> None:
    print(f"trimicro {trimicro.__version__} unary calls over TCP, {seconds:g} s per case\n")
    ratios = []
    for payload_name, payload in (("small", b"x" * 16), ("64 KiB", b"x" * 65536)):
        for concurrency in (1, 64):
            floor = await floor_case(payload, concurrency, seconds)
            ours = await trimicro_case(payload, concurrency, seconds)
            ratio = ours.rate / floor.rate
            ratios.append(ratio)
            print(f"{payload_name}, {concurrency} in flight:")
            print(_row("raw trio", floor))
            print(_row("trimicro", ours))
            print(f"  ratio     {ratio:.2f}x of the floor's calls/s")
            if payload_name == "small":
                for mode in ("selector", "wrappers"):
                    full = await trimicro_case(payload, concurrency, seconds, mode=mode)
                    print(_row(mode, full) + f"   {full.rate / ours.rate:.2f}x of direct")
            print()
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each case")
    trio.run(main, parser.parse_args().seconds)
