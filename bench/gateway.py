"""API gateway throughput: `POST /rpc` requests per second beside direct client calls.

    python -m bench.gateway [--seconds 2]

One echo service over TCP (memory registry). For 1 and 32 in flight it measures, in the same
run: direct `client.call` (the floor), `POST /rpc` through the gateway from keep-alive
connections with pre-encoded requests (so the HTTP client costs next to nothing), and the
same through httpx (what a Python caller sees). Everything shares one process and one core,
as the unary benchmark does; ratios are gateway / direct.
"""

from __future__ import annotations

import argparse
import json
import ssl
from collections.abc import Awaitable, Callable

import httpx
import trio

import trimicro
from bench.__main__ import Result, drive
from trimicro.gateway import open_gateway

REGISTRY = "memory://bench-gateway"
TRANSPORT = "tcp://"
REQUEST = {"service": "bench", "endpoint": "Bench.Echo", "request": {"name": "x" * 16}}


def _echo_service() -> trimicro.Service:
    service = trimicro.Service("bench", registry=REGISTRY, transport=TRANSPORT)

    @service.endpoint("Bench.Echo")
    async def echo(req: dict[str, str]) -> dict[str, str]:
        return req

    return service


class RawHttp:
    """A keep-alive HTTP/1.1 connection sending a pre-encoded `POST /rpc`; reconnects when
    the server ends the connection (hypercorn does after 1,000 requests)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.stream: trio.SocketStream | None = None
        body = json.dumps(REQUEST).encode()
        self.request = (
            b"POST /rpc HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.buffer = b""

    async def _receive(self, stream: trio.SocketStream) -> None:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError("the gateway closed the connection mid-response")
        self.buffer += data

    async def call(self) -> None:
        if self.stream is None:
            self.stream = await trio.open_tcp_stream(self.host, self.port)
        stream = self.stream
        await stream.send_all(self.request)
        while b"\r\n\r\n" not in self.buffer:
            await self._receive(stream)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(self.buffer) < length:
            await self._receive(stream)
        self.buffer = self.buffer[length:]
        if b"connection: close" in head.lower():
            await self.aclose()

    async def aclose(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
        self.stream, self.buffer = None, b""


async def _per_worker(callers: list[Callable[[], Awaitable[None]]], seconds: float) -> Result:
    """Like `drive`, but each worker has its own caller (its own connection)."""
    for caller in callers:  # warm up
        for _ in range(10):
            await caller()
    latencies: list[float] = []
    deadline = trio.current_time() + seconds

    async def worker(caller: Callable[[], Awaitable[None]]) -> None:
        while trio.current_time() < deadline:
            start = trio.current_time()
            await caller()
            latencies.append(trio.current_time() - start)

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for caller in callers:
            nursery.start_soon(worker, caller)
    return Result(len(latencies), trio.current_time() - started, latencies)


def _row(label: str, result: Result, floor: Result | None = None) -> str:
    ratio = f"   {result.rate / floor.rate:5.2f}x of direct" if floor else ""
    return (
        f"  {label:<14} {result.rate:>9,.0f} req/s   p50 {result.percentile(0.5) * 1e3:7.3f} ms"
        f"   p99 {result.percentile(0.99) * 1e3:7.3f} ms{ratio}"
    )


async def _case(concurrency: int, seconds: float, gateway_host: str, port: int) -> list[Result]:
    async with trimicro.open_client(registry=REGISTRY, transport=TRANSPORT) as client:

        async def direct() -> None:
            await client.call("bench", "Bench.Echo", REQUEST["request"])

        await drive(direct, concurrency, min(0.3, seconds))
        floor = await drive(direct, concurrency, seconds)
    connections = [RawHttp(gateway_host, port) for _ in range(concurrency)]
    raw = await _per_worker([connection.call for connection in connections], seconds)
    for connection in connections:
        await connection.aclose()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://{gateway_host}:{port}", limits=limits, trust_env=False,
        verify=ssl.create_default_context(),
    ) as http:  # fmt: skip

        async def via_httpx() -> None:
            response = await http.post("/rpc", json=REQUEST)
            assert response.status_code == 200, response.text

        await drive(via_httpx, concurrency, min(0.3, seconds))
        through_httpx = await drive(via_httpx, concurrency, seconds)
    return [floor, raw, through_httpx]


async def main(seconds: float) -> None:
    print(f"trimicro {trimicro.__version__} API gateway, POST /rpc, {seconds:g} s per case\n")
    async with (
        _echo_service().run(),
        open_gateway(address="127.0.0.1:0", registry=REGISTRY, transport=TRANSPORT) as gateway,
    ):
        host, _, port = gateway.address.rpartition(":")
        for concurrency in (1, 32):
            floor, raw, through_httpx = await _case(concurrency, seconds, host, int(port))
            print(f"{concurrency} in flight:")
            print(_row("direct call", floor))
            print(_row("gateway (raw)", raw, floor))
            print(_row("gateway (httpx)", through_httpx, floor))
            print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each case")
    trio.run(main, parser.parse_args().seconds)
