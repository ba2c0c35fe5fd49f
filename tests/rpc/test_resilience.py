"""Selector strategies, canaries, outlier ejection, retries and the retry budget (MockClock)."""

from __future__ import annotations

import collections

import pytest
import trio
import trio.testing

import trimicro
from trimicro import errors
from trimicro.registry import Node, ServiceRecord, open_registry
from trimicro.rpc._outlier import OutlierDetector
from trimicro.rpc._retry import RetryBudget, RetryPolicy
from trimicro.rpc._selector import Selector, pin_version, version_split
from trimicro.testing import open_cluster


def replicas(name: str, count: int, version: str = "1.0.0") -> list[trimicro.Service]:
    services = []
    for _ in range(count):
        service = trimicro.Service(name, version=version)

        @service.endpoint("Who.Am")
        async def who(req: None) -> dict[str, str]:
            return {"version": trimicro.current_call().service, "peer": "x"}

        services.append(service)
    return services


async def _serving_nodes(cluster: object, service: str, calls: int) -> collections.Counter[str]:
    """Which node answered each call: asks Debug.Stats' request counters before and after."""
    counts: collections.Counter[str] = collections.Counter()
    running = cluster.running[service]  # type: ignore[attr-defined]
    before = {r.node.id: r.server.statistics().requests for r in running}
    for _ in range(calls):
        await cluster.client.call(service, "Who.Am")  # type: ignore[attr-defined]
    for r in running:
        counts[r.node.id] = r.server.statistics().requests - before[r.node.id]
    return counts


async def test_round_robin_really_cycles_across_calls() -> None:
    async with open_cluster(*replicas("rr", 3)) as cluster:
        cluster.client.selector = Selector("round_robin")
        counts = await _serving_nodes(cluster, "rr", 30)
    assert sorted(counts.values()) == [10, 10, 10]


async def test_random_spreads_over_all_nodes() -> None:
    async with open_cluster(*replicas("rnd", 3)) as cluster:
        counts = await _serving_nodes(cluster, "rnd", 300)
    assert len(counts) == 3 and min(counts.values()) > 60


async def test_canary_split_lands_within_three_points() -> None:
    stable, canary = replicas("shop", 2, "1.0.0"), replicas("shop", 1, "1.1.0")
    async with open_cluster(*stable, *canary, seed=7) as cluster:
        cluster.client.selector = Selector(filters=[version_split({"1.0.0": 90, "1.1.0": 10})])
        counts = await _serving_nodes(cluster, "shop", 2000)
        canary_id = cluster.running["shop"][2].node.id
    share = counts[canary_id] / 2000
    assert 0.07 <= share <= 0.13, share


async def test_pin_version_routes_by_metadata() -> None:
    async with open_cluster(*replicas("pin", 2, "1.0.0"), *replicas("pin", 1, "2.0.0")) as cluster:
        cluster.client.selector = Selector(filters=[pin_version("X-Version")])
        new_id = cluster.running["pin"][2].node.id
        before = cluster.running["pin"][2].server.statistics().requests
        for _ in range(20):
            await cluster.client.call("pin", "Who.Am", metadata={"x-version": "2.0.0"})
        assert cluster.running["pin"][2].server.statistics().requests - before == 20
        assert new_id


def test_outlier_ejection_times_doubling_and_share_limit() -> None:
    detector = OutlierDetector()
    peers = ["a", "b", "c"]
    for _ in range(3):
        detector.record_failure("a", "connect", 100.0, peers)
    assert detector.ejected_until("a") == 130.0  # 3 consecutive connection errors: 30 s
    for _ in range(3):
        detector.record_failure("b", "connect", 101.0, peers)
    assert not detector.is_ejected("b", 101.0)  # 10% of 3 nodes, at least 1: only one at once
    for _ in range(3):
        detector.record_failure("a", "connect", 131.0, peers)
    assert detector.ejected_until("a") == 191.0  # ejected again: doubled to 60 s
    for _ in range(4):
        detector.record_failure("c", "server", 300.0, peers)
    assert not detector.is_ejected("c", 300.0)
    detector.record_failure("c", "server", 300.0, peers)
    assert detector.ejected_until("c") == 330.0  # 5 consecutive 5xx
    detector.record_success("a")
    assert detector.ejected_until("a") == float("-inf")  # a success clears it


async def _register_dead_node(registry_url: str, service: str) -> None:
    async with open_registry(registry_url) as registry:
        dead = Node("dead-1", "memory-nowhere", {"transport": "memory"})
        await registry.register(ServiceRecord(service, "1.0.0", nodes=[dead]))


async def test_dead_node_is_retried_elsewhere_and_ejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_cluster(*replicas("svc", 2)) as cluster:
        await _register_dead_node(cluster.registry, "svc")
        cluster.client.selector = Selector("round_robin")
        for _ in range(30):
            assert await cluster.client.call("svc", "Who.Am")
        assert cluster.client.selector.outliers.is_ejected("dead-1", trio.current_time())


async def test_non_idempotent_call_that_ran_is_never_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = collections.Counter[str]()
    service = trimicro.Service("flaky")

    @service.endpoint("Flaky.Charge")
    async def charge(req: None) -> None:
        runs["charge"] += 1
        raise RuntimeError("payment backend exploded")

    @service.endpoint("Flaky.Read", idempotent=True)
    async def read(req: None) -> None:
        runs["read"] += 1
        raise RuntimeError("replica exploded")

    async with open_cluster(service) as cluster:
        cluster.client.policy = RetryPolicy(retries=3)
        with pytest.raises(errors.Error):
            await cluster.client.call("flaky", "Flaky.Charge")
        with pytest.raises(errors.Error):
            await cluster.client.call("flaky", "Flaky.Read")
    assert runs == {"charge": 1, "read": 4}


async def test_retries_of_one_call_override_the_clients_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0
    service = trimicro.Service("shaky")

    @service.endpoint("Shaky.Read", idempotent=True)
    async def read(req: None) -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("replica exploded")

    async with open_cluster(service) as cluster:
        cluster.client.policy = RetryPolicy(retries=3, backoff_base=0.001, backoff_cap=0.001)
        for retries, attempts in ((0, 1), (2, 3), (None, 4)):
            runs = 0
            with pytest.raises(errors.Error):
                await cluster.client.call("shaky", "Shaky.Read", retries=retries)
            assert runs == attempts, retries
        with pytest.raises(ValueError, match="retries must be an integer >= 0"):
            await cluster.client.call("shaky", "Shaky.Read", retries=-1)
        assert runs == 4  # refused before anything was sent


async def test_retries_stay_inside_the_callers_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_cluster() as cluster:
        await _register_dead_node(cluster.registry, "gone")
        cluster.client.policy = RetryPolicy(retries=100, backoff_base=0.05, backoff_cap=0.05)
        start = trio.current_time()
        with pytest.raises((errors.Error, trio.TooSlowError)):
            with trio.fail_after(0.2):
                await cluster.client.call("gone", "X.Y")
        assert trio.current_time() - start <= 0.2


async def test_retry_budget_bounds_retries_against_a_dead_backend(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_cluster() as cluster:
        await _register_dead_node(cluster.registry, "down")
        cluster.client.policy = RetryPolicy(retries=3, backoff_base=0.0001, backoff_cap=0.0001)
        cluster.client.retry_budget = budget = RetryBudget(ratio=0.2, per_second=10, window=10)
        failures = 0
        for _ in range(1000):
            try:
                await cluster.client.call("down", "X.Y")
            except errors.Error:
                failures += 1
        elapsed = trio.current_time()
    assert failures == 1000
    # Without a budget, 3 retries each would be 3,000; the budget allows 20% of calls + 10/s.
    assert budget.spent <= 0.2 * 1000 + 10 * 10
    assert budget.spent + budget.refused >= 1000 and elapsed < 10
