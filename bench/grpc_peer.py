"""grpcio's asyncio server and client, the peer users would otherwise pick (for bench.report).

    python -m bench.grpc_peer [--seconds 2] [--concurrency 64]

A generic unary echo (bytes in, bytes out: no protoc), server and client in one asyncio
process on loopback, as trimicro's benchmarks run both sides in one trio process. Prints one
JSON line: {"rate": calls/s, "p50": seconds}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import grpc

PAYLOAD = b"x" * 16


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def main(seconds: float, concurrency: int) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Bench",
        {"Echo": grpc.unary_unary_rpc_method_handler(_echo, _identity, _identity)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        echo = channel.unary_unary("/bench.Bench/Echo", _identity, _identity)
        latencies: list[float] = []

        async def worker(until: float) -> None:
            while time.perf_counter() < until:
                start = time.perf_counter()
                await echo(PAYLOAD)
                latencies.append(time.perf_counter() - start)

        warm = time.perf_counter() + min(0.3, seconds)
        await asyncio.gather(*(worker(warm) for _ in range(concurrency)))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    await server.stop(None)
    print(json.dumps({"rate": len(latencies) / elapsed, "p50": statistics.median(latencies)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
