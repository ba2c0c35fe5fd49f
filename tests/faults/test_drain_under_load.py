"""Leaving `async with service.run()` under ~1,000 calls/s over real TCP: every call that was in
flight completes, calls arriving during the drain are refused with a 503 that says nothing
ran, and the node is deregistered before its listener closes."""

from __future__ import annotations

import attrs
import trio

import trimicro
from trimicro import errors
from trimicro.registry import open_registry
from trimicro.rpc._retry import RetryPolicy


@attrs.define
class Tally:
    ok: int = 0
    refused: int = 0  # 503 before a handler started: safe, nothing ran
    failed: list[str] = attrs.field(factory=list)


async def test_drain_under_load_loses_no_in_flight_call() -> None:
    url = "memory://drain-load"
    service = trimicro.Service("busy", registry=url, transport="tcp://", drain_timeout=5)
    events: list[str] = []

    @service.endpoint("Busy.Work")
    async def work(req: None) -> str:
        await trio.sleep(0.01)
        return "done"

    tally = Tally()
    async with (
        open_registry(url) as registry,
        trimicro.open_client(registry=url, transport="tcp://") as client,
    ):
        client.policy = RetryPolicy(retries=0)

        async def caller(address: str, stop: trio.Event) -> None:
            while not stop.is_set():
                try:
                    await client.call("busy", "Busy.Work", address=address)
                    tally.ok += 1
                except errors.Error as exc:
                    if exc.code == 503:
                        tally.refused += 1
                        await trio.sleep(0.01)
                    else:
                        tally.failed.append(str(exc))
                    if "connect" in exc.detail or "refused" in exc.detail:
                        return  # the listener is gone

        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            async with service.run() as running:
                address = f"tcp://{running.address}"
                for _ in range(20):  # 20 callers x ~1 call / 10 ms ~ 1,000-2,000 calls/s
                    nursery.start_soon(caller, address, stop)
                await trio.sleep(1.0)
                started = tally.ok
            events.append("exited")
            assert await registry.get_service("busy") == []
            stop.set()
    assert started > 500, started  # the load was real
    assert tally.failed == [], tally.failed[:3]
    assert service.last_drain is not None and service.last_drain.cancelled == 0
