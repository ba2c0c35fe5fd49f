"""Deadlines and cancellation cross the wire, checked at exact virtual times (MockClock)."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import trimicro
from trimicro.testing import open_cluster


def _task_names() -> set[str]:
    def walk(task: trio.lowlevel.Task) -> list[str]:
        return [task.name] + [
            name for n in task.child_nurseries for t in n.child_tasks for name in walk(t)
        ]

    return set(walk(trio.lowlevel.current_root_task()))  # type: ignore[arg-type]


def _handler_tasks() -> list[str]:
    return [name for name in _task_names() if "_run_call" in name]


async def test_one_ms_budget_times_out_caller_and_cancels_handler_same_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("slow")
    seen: dict[str, float] = {}

    @service.endpoint("Slow.Sleep")
    async def sleep(req: dict[str, float]) -> dict[str, str]:
        seen["started"] = trio.current_time()
        seen["budget"] = trimicro.current_call().remaining()
        try:
            await trio.sleep(10)
        finally:
            seen["cancelled_at"] = trio.current_time()
        return {"status": "finished"}

    async with open_cluster(service) as cluster:
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(0.001):
                await cluster.client.call("slow", "Slow.Sleep", {})
        timed_out_at = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        assert _handler_tasks() == []
    assert timed_out_at - start == pytest.approx(0.001, abs=1e-9)
    assert seen["budget"] == pytest.approx(0.001, abs=1e-9)
    assert seen["cancelled_at"] == timed_out_at


async def test_budget_shrinks_across_two_hops(autojump_clock: trio.testing.MockClock) -> None:
    front, back = trimicro.Service("front"), trimicro.Service("back")
    budgets: dict[str, float] = {}

    @front.endpoint("Front.Work")
    async def work(req: dict[str, str]) -> dict[str, str]:
        budgets["front"] = trimicro.current_call().remaining()
        await trio.sleep(0.3)
        reply: dict[str, str] = await trimicro.current_client().call("back", "Back.Work", {})
        return reply

    @back.endpoint("Back.Work")
    async def back_work(req: dict[str, str]) -> dict[str, str]:
        budgets["back"] = trimicro.current_call().remaining()
        return {"ok": "yes"}

    async with open_cluster(front, back) as cluster:
        with trio.fail_after(1.0):
            assert await cluster.client.call("front", "Front.Work", {}) == {"ok": "yes"}
    assert budgets["front"] == pytest.approx(1.0, abs=1e-9)
    assert budgets["back"] == pytest.approx(0.7, abs=1e-9)


async def test_no_deadline_means_infinite_budget(autojump_clock: trio.testing.MockClock) -> None:
    service = trimicro.Service("free")

    @service.endpoint("Free.Budget")
    async def budget(req: None) -> dict[str, bool]:
        return {"infinite": math.isinf(trimicro.current_call().remaining())}

    async with open_cluster(service) as cluster:
        assert await cluster.client.call("free", "Free.Budget") == {"infinite": True}


async def test_cancelling_caller_cancels_remote_unary_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("slow")
    cancelled_at: list[float] = []

    @service.endpoint("Slow.Forever")
    async def forever(req: None) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cancelled_at.append(trio.current_time())

    async with open_cluster(service) as cluster:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cluster.client.call, "slow", "Slow.Forever")
            await trio.sleep(2.5)
            nursery.cancel_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert cancelled_at == [2.5]
        assert _handler_tasks() == []


async def test_cancelling_caller_mid_stream_cancels_stream_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("ticker")
    events: list[tuple[str, float]] = []

    @service.stream_endpoint("Tick.Every")
    async def ticks(req: None, stream: trimicro.Stream[None]) -> None:
        try:
            for i in range(100):
                await stream.send({"i": i})
                await trio.sleep(1)
        finally:
            events.append(("handler-ended", trio.current_time()))

    async with open_cluster(service) as cluster:
        received = []
        with trio.move_on_after(3.5):
            async with cluster.client.stream("ticker", "Tick.Every") as stream:
                async for tick in stream:
                    received.append(tick["i"])
        await trio.testing.wait_all_tasks_blocked()
        assert _handler_tasks() == []
    assert received == [0, 1, 2, 3]
    assert events == [("handler-ended", 3.5)]


async def test_leaving_stream_early_cancels_handler(autojump_clock: trio.testing.MockClock) -> None:
    service = trimicro.Service("ticker")
    ended: list[float] = []

    @service.stream_endpoint("Tick.Every")
    async def ticks(req: None, stream: trimicro.Stream[None]) -> None:
        try:
            for i in range(100):
                await stream.send({"i": i})
                await trio.sleep(1)
        finally:
            ended.append(trio.current_time())

    async with open_cluster(service) as cluster:
        async with cluster.client.stream("ticker", "Tick.Every") as stream:
            async for tick in stream:
                if tick["i"] == 2:
                    break
        await trio.testing.wait_all_tasks_blocked()
    assert ended == [2.0]
