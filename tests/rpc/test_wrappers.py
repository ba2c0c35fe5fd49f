"""Wrappers compose in order on every side; circuit breaker and rate limiter (MockClock)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trimicro
from trimicro import errors
from trimicro.rpc._retry import RetryPolicy
from trimicro.testing import open_cluster
from trimicro.wrappers import BreakerState, circuit_breaker, rate_limiter


def recorder(name: str, log: list[str]) -> trimicro.wrappers.Wrapper:
    async def wrapper(call: trimicro.WrappedCall, proceed: trimicro.Proceed) -> object:
        log.append(f"{name}>{call.kind}:{call.endpoint}")
        result = await proceed()
        log.append(f"<{name}")
        return result

    return wrapper


async def test_wrappers_compose_in_order_on_client_and_handler() -> None:
    log: list[str] = []
    service = trimicro.Service("w", wrappers=[recorder("h1", log), recorder("h2", log)])

    @service.endpoint("W.Echo")
    async def echo(req: dict[str, str]) -> dict[str, str]:
        log.append("handler")
        return {"trace": trimicro.current_call().metadata.get("x-trace", "")}

    async def inject(call: trimicro.WrappedCall, proceed: trimicro.Proceed) -> object:
        call.metadata["X-Trace"] = "t-42"  # what a tracing wrapper does
        return await proceed()

    async with open_cluster(service) as cluster:
        cluster.client.wrappers = [recorder("c1", log), inject]
        assert await cluster.client.call("w", "W.Echo", {}) == {"trace": "t-42"}
    assert log == [
        "c1>client:W.Echo",
        "h1>handler:W.Echo",
        "h2>handler:W.Echo",
        "handler",
        "<h2",
        "<h1",
        "<c1",
    ]


async def test_subscriber_wrappers_apply() -> None:
    log: list[str] = []
    service = trimicro.Service("s", wrappers=[recorder("sw", log)])

    @service.subscribe("topic.a")
    async def on(msg: dict[str, int]) -> None:
        log.append("subscriber")

    async with open_cluster(service) as cluster:
        await cluster.client.publish("topic.a", {"n": 1})
        await trio.testing.wait_all_tasks_blocked()
    assert log == ["sw>subscriber:", "subscriber", "<sw"]


async def test_circuit_opens_then_recovers_through_half_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("backend")
    healthy = False
    executions = 0

    @service.endpoint("Backend.Work")
    async def work(req: None) -> dict[str, bool]:
        nonlocal executions
        executions += 1
        if not healthy:
            raise RuntimeError("down")
        return {"ok": True}

    breaker = circuit_breaker(failures=5, reset_after=30)
    async with open_cluster(service) as cluster:
        cluster.client.wrappers = [breaker]
        cluster.client.policy = RetryPolicy(retries=0)
        circuit = None
        for _ in range(8):
            with pytest.raises(errors.Error):
                await cluster.client.call("backend", "Backend.Work")
            await trio.sleep(1)
        circuit = breaker.circuits[("backend", "Backend.Work")]  # type: ignore[attr-defined]
        assert circuit.state is BreakerState.OPEN
        assert (executions, circuit.opened_at) == (5, 4.0)  # opened at the 5th failure, t=4
        healthy = True
        await trio.sleep_until(33.999)
        with pytest.raises(errors.Error, match="circuit open"):
            await cluster.client.call("backend", "Backend.Work")
        await trio.sleep_until(34.0)  # reset_after passed: one trial goes through
        assert await cluster.client.call("backend", "Backend.Work") == {"ok": True}
        assert circuit.state is BreakerState.CLOSED and executions == 6


async def test_half_open_failure_reopens(autojump_clock: trio.testing.MockClock) -> None:
    from trimicro.wrappers import CircuitBreaker

    circuit = CircuitBreaker(failures=2, reset_after=10)
    for t in (0.0, 1.0):
        assert circuit.admit(t)
        circuit.record(False, t)
    assert circuit.state is BreakerState.OPEN and not circuit.admit(5.0)
    assert circuit.admit(11.0) and circuit.state is BreakerState.HALF_OPEN
    assert not circuit.admit(11.5)  # one trial at a time
    circuit.record(False, 12.0)
    assert circuit.state is BreakerState.OPEN and circuit.opened_at == 12.0


async def test_server_rate_limit_answers_429_before_the_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("limited", wrappers=[rate_limiter(rate=10, burst=2)])
    runs = 0

    @service.endpoint("Limited.Go")
    async def go(req: None) -> int:
        nonlocal runs
        runs += 1
        return runs

    async with open_cluster(service) as cluster:
        cluster.client.policy = RetryPolicy(retries=0)
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(await cluster.client.call("limited", "Limited.Go"))
            except errors.Error as exc:
                outcomes.append(exc.code)
        await trio.sleep(0.1)  # one token back
        outcomes.append(await cluster.client.call("limited", "Limited.Go"))
    assert outcomes == [1, 2, 429, 429, 3]
