"""The trio driver under MockClock: exact times for damping, storms, flushes, convergence."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from trimicro.registry import (
    Node,
    Registry,
    RegistryError,
    ServiceRecord,
    WatchEvent,
    open_registry,
)
from trimicro.routing import (
    Advert,
    AdvertType,
    EventType,
    Route,
    RouteEvent,
    Router,
    Strategy,
    WatchOverflowed,
    open_router,
)

#: Keep whole-table adverts out of the way: only changes go out in these tests' time span.
CHANGES_ONLY: dict[str, Any] = {"strategy": Strategy.ALL, "table_interval": 1000.0}


def record(name: str, node: str) -> ServiceRecord:
    return ServiceRecord(name, "1", nodes=[Node(node, f"{node}:1")])


@attrs.define
class Recorder:
    """Every advert a router sends, with the time it came out."""

    adverts: list[tuple[float, Advert]] = attrs.field(factory=list)

    async def run(self, router: Router) -> None:
        async for advert in router.adverts:
            self.adverts.append((trio.current_time(), advert))

    def updates(self, start: float = 0.0, stop: float = math.inf) -> list[tuple[float, Advert]]:
        return [
            (t, a) for t, a in self.adverts if start <= t < stop and a.type is AdvertType.UPDATE
        ]


@asynccontextmanager
async def running(
    registry: Registry, name: str = "r1", **kwargs: object
) -> AsyncIterator[tuple[Router, Recorder]]:
    recorder = Recorder()
    async with trio.open_nursery() as nursery:
        async with open_router(registry, id=name, rng=random.Random(1), **kwargs) as router:  # type: ignore[arg-type]
            nursery.start_soon(recorder.run, router)
            yield router, recorder


async def test_a_route_flapping_four_times_in_a_minute_is_suppressed_then_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://flap") as registry:
        await registry.register(record("flappy", "f"))
        async with running(registry, **CHANGES_ONLY) as (router, recorder):
            key = router.lookup("flappy")[0].key
            for at, change in [(1, "off"), (16, "on"), (31, "off"), (46, "on")]:
                await trio.sleep_until(at)
                if change == "off":
                    await registry.deregister(record("flappy", "f"))
                else:
                    await registry.register(record("flappy", "f"))
                await trio.testing.wait_all_tasks_blocked()
                if at == 31:
                    assert router.core.damper.is_suppressed(key)
            reuse = router.core.damper.reuse_time(key)
            await trio.sleep_until(200)
    assert reuse == pytest.approx(116.695, abs=1e-3)
    sent = [(t, e.type, e.timestamp) for t, a in recorder.updates() for e in a.events]
    assert sent == [
        (10.0, EventType.DELETE, 1.0),
        (20.0, EventType.CREATE, 16.0),
        (120.0, EventType.CREATE, 46.0),  # suppressed at 31 s, released at the 120 s tick
    ]
    assert reuse <= 120.0 < reuse + 10  # within one tick of the computed reuse time
    assert 120.0 - 46.0 <= 90.0  # and within max suppress of the last change


async def test_max_suppress_is_honoured_under_continuous_flapping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://flap-max") as registry:
        await registry.register(record("flappy", "f"))
        async with running(registry, **CHANGES_ONLY) as (_, recorder):
            for second in range(2, 62):  # off at even seconds, on at odd: ends on at 61 s
                await trio.sleep_until(second)
                if second % 2:
                    await registry.register(record("flappy", "f"))
                else:
                    await registry.deregister(record("flappy", "f"))
            await trio.sleep_until(300)
    sent = [(t, e.type, e.timestamp) for t, a in recorder.updates() for e in a.events]
    # suppressed from the third change (4 s) on; the penalty sits at the ceiling, 400, and
    # reaches reuse exactly 90 s after the last change (151 s): released at the next tick
    assert sent == [(160.0, EventType.CREATE, 61.0)]


class ScriptedRegistry:
    """A registry whose changes cost O(1): the memory registry's expiry task rescans every
    version on each registration, which would make this test about that."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], ServiceRecord] = {}
        self.watchers: list[trio.MemorySendChannel[WatchEvent]] = []

    def change(self, record: ServiceRecord, present: bool) -> None:
        key = (record.name, record.version)
        action = "delete" if not present else "update" if key in self.records else "create"
        if present:
            self.records[key] = record
        else:
            del self.records[key]
        for watcher in self.watchers:
            watcher.send_nowait(WatchEvent(action, record))

    async def list_services(self) -> list[ServiceRecord]:
        await trio.lowlevel.checkpoint()
        return list(self.records.values())

    async def get_service(self, name: str) -> list[ServiceRecord]:
        await trio.lowlevel.checkpoint()
        return [r for r in self.records.values() if r.name == name]

    @asynccontextmanager
    async def watch(self, service: str | None = None) -> AsyncIterator[Any]:
        send, receive = trio.open_memory_channel[WatchEvent](20_000)
        self.watchers.append(send)
        yield receive


class FlakyRegistry(ScriptedRegistry):
    """Its first watch fails at once, as an overflowed watch does."""

    failures = 1

    @asynccontextmanager
    async def watch(self, service: str | None = None) -> AsyncIterator[Any]:
        if self.failures:
            self.failures -= 1
            yield self._broken()
        else:
            async with super().watch(service) as watcher:
                yield watcher

    async def _broken(self) -> AsyncIterator[WatchEvent]:
        await trio.lowlevel.checkpoint()
        raise RegistryError("watcher fell behind")
        yield  # pragma: no cover (makes this an async generator)


async def test_a_failed_registry_watch_is_reopened_and_the_registry_read_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = FlakyRegistry()
    async with running(registry) as (router, _):  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()  # the watch failed; restart pending
        registry.change(record("missed", "m"), True)  # nobody is watching
        await trio.sleep(1)  # backoff: at most 0.1 s
        assert [r.address for r in router.lookup("missed")] == ["m:1"]
        registry.change(record("seen", "s"), True)
        await trio.testing.wait_all_tasks_blocked()
        assert [r.address for r in router.lookup("seen")] == ["s:1"]


async def test_a_storm_of_10000_changes_in_a_second_gives_a_bounded_number_of_adverts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = ScriptedRegistry()
    for j in range(50):
        registry.change(record(f"flap-{j}", f"f{j}"), True)
    async with running(registry) as (router, recorder):  # type: ignore[arg-type]
        await trio.sleep_until(0.5)
        for i in range(5000):  # every 0.1 ms: a new service, and one of 50 services flipped
            registry.change(record(f"svc-{i}", f"n{i}"), True)
            registry.change(record(f"flap-{i % 50}", f"f{i % 50}"), (i // 50) % 2 == 1)
            await trio.sleep(0.0001)
        assert trio.current_time() < 1.5  # 10,000 changes within one second
        await trio.sleep_until(125)
        assert len(router.lookup("svc-4999")) == 1
    ticks = [(t, len(a.events)) for t, a in recorder.updates(0.1, 119)]
    assert ticks == [(10.0, 4096), (10.0, 904), (100.0, 50)]
    first = [e for _, a in recorder.updates(9, 11) for e in a.events]
    assert len({e.route.key for e in first}) == 5000  # one event per route, none flapping
    assert all(e.route.service.startswith("svc-") for e in first)
    released = [e for _, a in recorder.updates(99, 101) for e in a.events]
    assert {e.route.service for e in released} == {f"flap-{j}" for j in range(50)}
    assert {e.type for e in released} == {EventType.CREATE}


async def test_table_flush_and_solicitation_carry_the_whole_table(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://flush") as registry:
        for i in range(20):
            await registry.register(record(f"svc-{i}", f"n{i}"))
        async with running(registry, strategy=Strategy.ALL) as (router, recorder):
            await trio.sleep_until(125)
            router.process(Advert("peer", AdvertType.SOLICITATION, 0.0))
            await trio.testing.wait_all_tasks_blocked()  # answered at once
            router.solicit()
            await trio.sleep_until(130)
    everything = {f"n{i}:1" for i in range(20)}
    by_time = {t: a for t, a in recorder.adverts}
    assert by_time[0.0].type is AdvertType.ANNOUNCE
    assert {e.route.address for e in by_time[0.0].events} == everything
    assert {e.type for e in by_time[0.0].events} == {EventType.CREATE}
    flush, answer, ask = (a for t, a in recorder.adverts if t in (120.0, 125.0))
    assert (flush.type, answer.type, ask.type) == (
        AdvertType.UPDATE,
        AdvertType.UPDATE,
        AdvertType.SOLICITATION,
    )
    for advert in (flush, answer, ask):
        assert {e.route.address for e in advert.events} == everything
        assert {e.type for e in advert.events} == {EventType.UPDATE}


async def link(source: Router, sink: Router) -> None:
    """An in-memory link: every advert one router sends, the other processes."""
    async for advert in source.adverts:
        sink.process(advert)


async def test_two_routers_converge_and_a_withdrawal_reaches_both_within_one_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        open_registry("memory://site-a") as site_a,
        open_registry("memory://site-b") as site_b,
    ):
        await site_a.register(record("alpha", "a1"))
        await site_a.register(record("gamma", "ga"))
        await site_b.register(record("beta", "b1"))
        await site_b.register(record("gamma", "gb"))
        async with trio.open_nursery() as nursery:
            async with (
                open_router(site_a, id="A", rng=random.Random(1)) as a,
                open_router(site_b, id="B", rng=random.Random(2), gateway="gw-b:1") as b,
            ):
                nursery.start_soon(link, a, b)
                nursery.start_soon(link, b, a)
                await trio.sleep(1)
                for service in ("alpha", "beta", "gamma"):
                    assert a.lookup(service)[0] == b.lookup(service)[0]
                assert a.lookup("gamma")[0].router == "A"  # metric 1 beats B's 2 (gateway)
                assert [r.metric for r in b.lookup("gamma")] == [1, 2]
                await trio.sleep_until(42)
                await site_a.deregister(record("alpha", "a1"))
                await trio.sleep_until(42 + 10)  # one advert interval
                assert a.lookup("alpha") == b.lookup("alpha") == []
                assert b.lookup("beta")[0].router == "B"
            # both routers stopped; their channels closed, so the links ended by themselves


async def test_watch_sees_changes_and_ends_with_the_router(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[RouteEvent | WatchOverflowed] = []
    async with open_registry("memory://watch-router") as registry:
        async with trio.open_nursery() as nursery:
            async with running(registry) as (router, _):

                async def follow() -> None:
                    async with router.watch("svc") as watcher:
                        async for event in watcher:
                            seen.append(event)

                nursery.start_soon(follow)
                await trio.sleep(1)
                await registry.register(record("svc", "n"))
                await registry.register(record("other", "o"))
                await registry.deregister(record("svc", "n"))
                await trio.sleep(1)
    assert [(e.type, e.route.address) for e in seen if isinstance(e, RouteEvent)] == [
        (EventType.CREATE, "n:1"),
        (EventType.DELETE, "n:1"),
    ]


async def test_a_learned_route_expires_at_its_ttl_and_watchers_hear_of_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[float, EventType]] = []
    route = Route("svc", "far:1", router="peer")
    async with open_registry("memory://ttl") as registry, trio.open_nursery() as nursery:
        async with running(registry) as (router, _):

            async def follow() -> None:
                async with router.watch() as watcher:
                    async for event in watcher:
                        assert isinstance(event, RouteEvent)
                        seen.append((trio.current_time(), event.type))

            nursery.start_soon(follow)
            await trio.sleep(1)
            router.process(
                Advert(
                    "peer", AdvertType.UPDATE, 0.0, 25.0, [RouteEvent(EventType.CREATE, route, 0.0)]
                )
            )
            await trio.sleep(60)
            assert router.lookup("svc") == []
    assert seen == [(1.0, EventType.CREATE), (26.0, EventType.DELETE)]


async def test_a_stopped_router_leaves_nothing_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://stop") as registry:
        with trio.fail_after(60):
            async with open_router(registry, id="r", rng=random.Random(0)) as router:
                await trio.sleep(15)
            adverts = [advert async for advert in router.adverts]  # closed: drains and ends
    assert [a.type for a in adverts] == []  # empty registry: no announce, no updates
    assert router.statistics().routes == 0


async def test_a_stalled_consumer_blocks_only_advertising_and_stopping_still_works(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://stall") as registry:
        await registry.register(record("svc", "n"))
        with trio.fail_after(600):
            async with open_router(registry, id="r", rng=random.Random(0)) as router:
                for _ in range(40):  # nobody reads router.adverts: the buffer (16) fills
                    router.solicit()
                await trio.sleep(300)
                route = Route("far", "f:1", router="peer")
                router.process(
                    Advert(
                        "peer",
                        AdvertType.UPDATE,
                        0.0,
                        30.0,
                        [RouteEvent(EventType.CREATE, route, 0)],
                    )
                )
                assert router.lookup("far") == [route]
                await trio.sleep(31)
                assert router.lookup("far") == []  # TTLs hold while the advertiser waits
                await registry.deregister(record("svc", "n"))
                await trio.testing.wait_all_tasks_blocked()
                assert router.lookup("svc") == []
            # leaving cancelled the advertising task mid-send; the channel is closed
            queued = [advert async for advert in router.adverts]
    assert len(queued) == 16


async def test_own_adverts_are_ignored_by_the_driver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://own") as registry:
        await registry.register(record("svc", "n"))
        async with running(registry) as (router, _):
            await trio.sleep(1)
            route = router.lookup("svc")[0]
            echo = Advert(
                "r1", AdvertType.UPDATE, 0.0, 300.0, [RouteEvent(EventType.DELETE, route, 0.5)]
            )
            router.process(echo)
            assert router.lookup("svc") == [route]
            assert isinstance(route, Route)
