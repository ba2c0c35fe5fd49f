"""Publish/subscribe through services: queue groups, typed messages, context, drain."""

from __future__ import annotations

import collections

import attrs
import pytest
import trio
import trio.testing

import trimicro
from trimicro.testing import open_cluster


@attrs.frozen
class Event:
    seq: int
    kind: str = "created"


def audit_system(received: dict[str, list[int]]) -> list[trimicro.Service]:
    def subscriber(name: str, queue: str | None) -> trimicro.Service:
        service = trimicro.Service(name)

        @service.subscribe("events", queue=queue)
        async def on_event(event: Event) -> None:
            received[name].append(event.seq)

        return service

    return [
        subscriber("audit-a", "audit"),
        subscriber("audit-b", "audit"),
        subscriber("logger", None),
    ]


def test_subscriber_must_take_one_message() -> None:
    service = trimicro.Service("x")
    with pytest.raises(TypeError, match="must take"):

        @service.subscribe("events")
        async def bad(a: Event, b: Event) -> None: ...


async def _publish_and_settle(cluster: object, count: int) -> None:
    for i in range(count):
        await cluster.client.publish("events", Event(i))  # type: ignore[attr-defined]
    await trio.testing.wait_all_tasks_blocked()


async def test_memory_queue_group_shares_and_plain_subscriber_gets_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    received: dict[str, list[int]] = collections.defaultdict(list)
    services = audit_system(received)
    async with open_cluster(*services) as cluster:
        await _publish_and_settle(cluster, 200)
    assert received["logger"] == list(range(200))
    shared = received["audit-a"] + received["audit-b"]
    assert sorted(shared) == list(range(200))  # each exactly once across the group
    assert received["audit-a"] and received["audit-b"]  # both members took a share


async def test_direct_broker_in_process(autojump_clock: trio.testing.MockClock) -> None:
    received: dict[str, list[int]] = collections.defaultdict(list)
    services = audit_system(received)
    url = "memory://direct-pubsub"
    for service in services:
        service.registry = service.transport = url
        service.broker = "direct://"
    async with trio.open_nursery() as nursery:
        stops = []
        for service in services:
            stop = trio.Event()
            stops.append(stop)
            await nursery.start(_run_until, service, stop)
        async with trimicro.open_client(registry=url, transport=url, broker="direct://") as client:
            for i in range(300):
                await client.publish("events", Event(i))
        await trio.testing.wait_all_tasks_blocked()
        for stop in stops:
            stop.set()
    assert received["logger"] == list(range(300))
    assert sorted(received["audit-a"] + received["audit-b"]) == list(range(300))
    assert received["audit-a"] and received["audit-b"]


async def _run_until(
    service: trimicro.Service, stop: trio.Event, task_status: trio.TaskStatus[None]
) -> None:
    async with service.run():
        task_status.started()
        await stop.wait()


async def test_handler_sees_topic_and_metadata_and_errors_are_counted() -> None:
    service = trimicro.Service("ctx")
    seen: list[tuple[str, str | None, str]] = []

    @service.subscribe("orders.created", queue="billing")
    async def on_order(event: Event) -> None:
        message = trimicro.current_message()
        seen.append((message.topic, message.queue, message.metadata["x-tenant"]))
        if event.seq == 1:
            raise RuntimeError("handler failure is logged and counted, not fatal")

    async with open_cluster(service) as cluster:
        for i in range(3):
            await cluster.client.publish("orders.created", Event(i), metadata={"X-Tenant": "t1"})
        await trio.testing.wait_all_tasks_blocked()
        subscribers = service._subscribers
        assert (subscribers.handled, subscribers.errors) == (2, 1)
    assert seen == [("orders.created", "billing", "t1")] * 3


async def test_shutdown_handles_queued_messages_before_deregistering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("slowsub", drain_timeout=30)
    handled: list[tuple[int, float]] = []

    @service.subscribe("work")
    async def slow(event: Event) -> None:
        await trio.sleep(1)
        handled.append((event.seq, trio.current_time()))

    async with open_cluster(service) as cluster:
        for i in range(5):
            await cluster.client.publish("work", Event(i))
        # Leaving the cluster shuts the service down while 5 messages are queued.
    assert handled == [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0)]


async def test_bad_topic_is_refused() -> None:
    async with open_cluster() as cluster:
        with pytest.raises(ValueError, match="topic 'has space'"):
            await cluster.client.publish("has space", {})
