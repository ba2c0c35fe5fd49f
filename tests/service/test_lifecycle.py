"""Registration with TTL and refresh, and the shutdown order, at exact virtual times."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trimicro
from trimicro import errors
from trimicro.registry import Node, ServiceRecord, open_registry
from trimicro.testing import open_cluster


async def test_registration_is_refreshed_on_its_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("ticking", register_ttl=60, register_interval=30)
    refreshed: list[float] = []
    async with open_cluster(service) as cluster:
        async with open_registry(cluster.registry) as registry:
            async with registry.watch("ticking") as watcher:
                with trio.move_on_after(100):
                    async for _event in watcher:
                        refreshed.append(trio.current_time())
            # Refreshing kept it alive far beyond one TTL.
            assert [n.id for r in await registry.get_service("ticking") for n in r.nodes] == [
                cluster.node("ticking").node.id
            ]
    assert refreshed == [30.0, 60.0, 90.0]


async def test_unrefreshed_node_expires_exactly_at_its_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    record = ServiceRecord("orphan", nodes=[Node("orphan-1", "127.0.0.1:1")])
    async with open_registry("memory://expiry") as registry:
        await registry.register(record, ttl=60)
        async with registry.watch() as watcher:
            await trio.sleep(59.999)
            assert len(await registry.get_service("orphan")) == 1
            event = await watcher.__aiter__().__anext__()
            assert (event.action, trio.current_time()) == ("delete", 60.0)
        assert await registry.get_service("orphan") == []


async def test_call_in_flight_at_shutdown_completes_and_new_calls_are_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("worker", drain_timeout=30)
    order: list[str] = []

    @service.endpoint("Work.Slow")
    async def slow(req: None) -> dict[str, str]:
        await trio.sleep(5)
        order.append(f"handler done at {trio.current_time()}")
        return {"status": "done"}

    async with (
        open_registry("memory://drain") as registry,
        trimicro.open_client(registry="memory://drain", transport="memory://drain") as client,
    ):
        service.registry = service.transport = "memory://drain"
        results: list[object] = []
        async with trio.open_nursery() as nursery:
            async with service.run() as running:

                async def call() -> None:
                    results.append(await client.call("worker", "Work.Slow"))

                nursery.start_soon(call)
                await trio.sleep(1)
            # Leaving the block returned only after the drain: deregistered, handler done.
            order.append(f"exited at {trio.current_time()}")
            assert await registry.get_service("worker") == []
        with pytest.raises(errors.Error):
            await client.call("worker", "Work.Slow", address=f"memory://{running.address}")
    assert results == [{"status": "done"}]
    assert order == ["handler done at 5.0", "exited at 5.0"]
    assert service.last_drain is not None and service.last_drain.cancelled == 0


async def test_drain_budget_cancels_what_is_left(autojump_clock: trio.testing.MockClock) -> None:
    service = trimicro.Service("worker", drain_timeout=2)
    ended: list[float] = []

    @service.endpoint("Work.Forever")
    async def forever(req: None) -> None:
        try:
            await trio.sleep_forever()
        finally:
            ended.append(trio.current_time())

    async with open_cluster() as cluster:
        service.registry = service.transport = cluster.registry
        async with trio.open_nursery() as nursery:
            async with service.run():

                async def call() -> None:
                    with pytest.raises(errors.Error) as info:
                        await cluster.client.call("worker", "Work.Forever")
                    assert info.value.code == 500
                    assert "shut down during the call" in info.value.detail

                nursery.start_soon(call)
                await trio.sleep(1)
    assert ended == [3.0]
    assert service.last_drain is not None and service.last_drain.cancelled == 1
