"""Soak and endurance: `nox -s soak` (or `python -m bench.soak --minutes 10`).

1. 10,000 sequential calls of 271,828 bytes, zero failures, per transport (TCP, QUIC).
2. 1,000 concurrent large calls on one connection.
3. `--minutes` at half the measured maximum rate: RSS growth under 10%, and tasks and file
   descriptors back to their baseline afterwards.
Exits non-zero when any check fails, printing every figure either way.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import trio

import trimicro
from trimicro._debug import _count_tasks, _memory_rss

LARGE = b"\xa5" * 271_828


def _fds() -> int:
    return len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else -1


def _service(name: str, transport: str) -> trimicro.Service:
    service = trimicro.Service("soak", registry=f"memory://{name}", transport=transport)

    @service.endpoint("Soak.Echo")
    async def echo(req: bytes) -> bytes:
        return req

    return service


async def _sequential(client: trimicro.Client, address: str, count: int) -> int:
    failures = 0
    for _ in range(count):
        try:
            reply = await client.call("soak", "Soak.Echo", LARGE, address=address)
            failures += reply != LARGE
        except trimicro.errors.Error:
            failures += 1
    return failures


async def _concurrent(client: trimicro.Client, address: str, count: int) -> int:
    failures = 0

    async def one() -> None:
        nonlocal failures
        try:
            reply = await client.call("soak", "Soak.Echo", LARGE, address=address)
            failures += reply != LARGE
        except trimicro.errors.Error:
            failures += 1

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return failures


async def _endurance(client: trimicro.Client, address: str, minutes: float) -> dict[str, float]:
    small = b"x" * 64
    started = trio.current_time()
    with trio.move_on_after(2):
        done = 0
        while True:
            await client.call("soak", "Soak.Echo", small, address=address)
            done += 1
    rate = done / (trio.current_time() - started)
    interval = 2 / rate  # half the measured maximum
    rss_start, calls = _memory_rss(), 0
    deadline = trio.current_time() + minutes * 60
    while trio.current_time() < deadline:
        await client.call("soak", "Soak.Echo", small, address=address)
        calls += 1
        await trio.sleep(interval)
    growth = (_memory_rss() - rss_start) / rss_start
    return {"max_rate": rate, "calls": calls, "rss_growth": growth}


async def soak(transport: str, sequential: int, concurrent: int, minutes: float) -> bool:
    name = transport.split(":")[0]
    fds, tasks = _fds(), _count_tasks()
    async with _service(f"soak-{name}", transport).run() as running:
        async with trimicro.open_client(registry=f"memory://soak-{name}", transport=transport) as c:
            address = f"{name}://{running.address}"
            seq = await _sequential(c, address, sequential)
            conc = await _concurrent(c, address, concurrent)
            endurance = await _endurance(c, address, minutes)
    await trio.sleep(0.1)
    fds_after, tasks_after = _fds(), _count_tasks()
    ok = seq == 0 and conc == 0 and endurance["rss_growth"] < 0.10
    ok = ok and fds_after <= fds and tasks_after <= tasks
    print(
        f"{name}: sequential {sequential} x 271,828 B: {seq} failures; "
        f"{concurrent} concurrent: {conc} failures"
    )
    print(
        f"{name}: endurance {minutes:g} min at half of {endurance['max_rate']:,.0f} calls/s: "
        f"{endurance['calls']:,.0f} calls, RSS growth {endurance['rss_growth']:+.1%}; "
        f"fds {fds}->{fds_after}, tasks {tasks}->{tasks_after}: {'ok' if ok else 'FAILED'}"
    )
    return ok


async def main(args: argparse.Namespace) -> int:
    results = [
        await soak(transport, args.sequential, args.concurrent, args.minutes)
        for transport in args.transports
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sequential", type=int, default=10_000)
    parser.add_argument("--concurrent", type=int, default=1_000)
    parser.add_argument("--transports", nargs="+", default=["tcp://", "quic://"])
    sys.exit(trio.run(main, parser.parse_args()))
