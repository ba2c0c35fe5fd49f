"""The structured-concurrency helpers, at exact virtual times."""

from __future__ import annotations

import math
import random

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trimicro.nursery import (
    Backoff,
    DrainingError,
    InFlight,
    SuperviseStats,
    deadline_from_budget_ns,
    open_owned_nursery,
    remaining_budget_ns,
    run_periodic,
    supervise,
)


@given(attempt=st.integers(0, 2000), seed=st.integers(0, 2**32))
def test_backoff_full_jitter_stays_within_bounds(attempt: int, seed: int) -> None:
    backoff = Backoff(base=0.1, cap=30.0)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(30.0, 0.1 * 2.0 ** min(attempt, 500))


def test_backoff_without_jitter_is_the_ceiling() -> None:
    backoff = Backoff(base=1, cap=10, jitter=False)
    assert [backoff.delay(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]


async def test_periodic_ticks_on_schedule(autojump_clock: trio.testing.MockClock) -> None:
    ticks: list[float] = []

    async def tick() -> None:
        ticks.append(trio.current_time())

    with trio.move_on_after(35):
        await run_periodic(tick, 10)
    assert ticks == [0, 10, 20, 30]


async def test_periodic_skips_ticks_it_overran(autojump_clock: trio.testing.MockClock) -> None:
    ticks: list[float] = []

    async def slow() -> None:
        ticks.append(trio.current_time())
        if len(ticks) == 2:
            await trio.sleep(25)  # overruns the ticks at 20 and 30

    with trio.move_on_after(55):
        await run_periodic(slow, 10)
    assert ticks == [0, 10, 40, 50]


async def test_supervise_restarts_with_backoff_then_gives_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []

    async def failing() -> None:
        starts.append(trio.current_time())
        raise RuntimeError("boom")

    stats = SuperviseStats()
    with pytest.raises(RuntimeError):
        await supervise(
            failing, name="t", backoff=Backoff(1, 100, jitter=False), max_restarts=3, stats=stats
        )
    assert starts == [0, 1, 3, 7]
    assert stats.restarts == 3 and stats.last_error == "RuntimeError: boom"


async def test_supervise_resets_attempts_after_a_long_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []

    async def sometimes() -> None:
        starts.append(trio.current_time())
        if len(starts) == 3:
            await trio.sleep(100)  # a long healthy run resets the backoff
        if len(starts) < 5:
            raise RuntimeError("flaky")

    await supervise(sometimes, name="t", backoff=Backoff(1, 100, jitter=False), reset_after=60)
    assert starts == [0, 1, 3, 104, 106]


async def test_supervise_does_not_catch_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def forever() -> None:
        nonlocal runs
        runs += 1
        await trio.sleep_forever()

    with trio.move_on_after(5) as scope:
        await supervise(forever, name="t")
    assert scope.cancelled_caught and runs == 1


async def test_budget_round_trip(autojump_clock: trio.testing.MockClock) -> None:
    assert remaining_budget_ns() is None
    assert deadline_from_budget_ns(None) == math.inf
    with trio.move_on_after(1.5):
        assert remaining_budget_ns() == 1_500_000_000
        await trio.sleep(0.5)
        budget = remaining_budget_ns()
        assert budget == 1_000_000_000
        assert deadline_from_budget_ns(budget) == trio.current_effective_deadline()


async def test_drain_waits_for_work_within_budget(autojump_clock: trio.testing.MockClock) -> None:
    in_flight = InFlight()

    async def work(seconds: float) -> None:
        with trio.CancelScope() as scope, in_flight.track(scope):
            await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work, 3)
        nursery.start_soon(work, 5)
        await trio.sleep(1)
        result = await in_flight.drain(10)
    assert (result.completed, result.cancelled, result.elapsed) == (2, 0, 4)
    with pytest.raises(DrainingError):
        with in_flight.track():
            pass


async def test_drain_cancels_what_exceeds_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    in_flight = InFlight()
    ended: list[tuple[str, float]] = []

    async def work(name: str, seconds: float) -> None:
        with trio.CancelScope() as scope, in_flight.track(scope):
            try:
                await trio.sleep(seconds)
            finally:
                ended.append((name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work, "quick", 1)
        nursery.start_soon(work, "slow", 100)
        await trio.testing.wait_all_tasks_blocked()
        result = await in_flight.drain(2)
    assert ended == [("quick", 1), ("slow", 2)]
    assert (result.completed, result.cancelled) == (1, 1)
    assert in_flight.statistics().in_flight == 0


async def test_owned_nursery_unwraps_a_single_exception() -> None:
    with pytest.raises(KeyError):
        async with open_owned_nursery():
            raise KeyError("mine")

    async def fail() -> None:
        raise ValueError("task")

    with pytest.raises(BaseExceptionGroup) as group:
        async with open_owned_nursery() as nursery:
            nursery.start_soon(fail)
            raise KeyError("body")
    assert {type(e) for e in group.value.exceptions} == {KeyError, ValueError}
