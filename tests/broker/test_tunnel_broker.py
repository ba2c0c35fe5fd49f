"""`TunnelBroker` under MockClock over memory links: node a listens, b and c dial it.

The same behaviours the memory and direct brokers are held to (tests/broker/test_pubsub.py):
fan-out to every plain subscription, one member per queue group, metadata carried,
unsubscribe; plus what is particular to the tunnel: a publish right after a link comes up
waits for the peer's announce, a topic nobody subscribes to costs the wait once, and a queue
group fails over when a member's link dies.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

from trimicro.broker import BrokerError, BrokerMessage, Subscription, TunnelBroker
from trimicro.broker._tunnel import queue_channel, topic_channel
from trimicro.session import MemoryTransport
from trimicro.session.tunnel import Tunnel, open_tunnel

_hubs = itertools.count()


@asynccontextmanager
async def _network(
    *names: str, seed: int = 0
) -> AsyncIterator[tuple[dict[str, Tunnel], dict[str, TunnelBroker]]]:
    """Node `names[0]` listens; the others dial it. Yields tunnels and brokers by name."""
    hub = f"tunnel-broker-{next(_hubs)}"
    tunnels: dict[str, Tunnel] = {}
    brokers: dict[str, TunnelBroker] = {}
    async with AsyncExitStack() as stack:
        first, *others = names
        for name in names:
            where = {"address": first} if name == first else {"peers": [first]}
            tunnels[name] = await stack.enter_async_context(
                open_tunnel(MemoryTransport(hub), id=name, rng=random.Random(seed), **where)
            )
            rng = random.Random(f"{seed}-{name}")
            brokers[name] = await stack.enter_async_context(TunnelBroker(tunnels[name], rng=rng))
        await tunnels[first].wait_links(len(others))
        for name in others:
            await tunnels[name].wait_links(1)
        yield tunnels, brokers


async def _collect(
    subscription: Subscription,
    into: list[BrokerMessage],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    async for message in subscription:
        into.append(message)


def _seqs(messages: list[BrokerMessage]) -> list[int]:
    return [int(m.body) for m in messages]


async def test_every_plain_subscription_on_every_node_gets_every_message_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _network("a", "b", "c") as (_, brokers), trio.open_nursery() as nursery:
        got: dict[str, list[BrokerMessage]] = {k: [] for k in ("a1", "a2", "b", "c")}
        async with AsyncExitStack() as subs:
            for name, node in (("a1", "a"), ("a2", "a"), ("b", "b"), ("c", "c")):
                sub = await subs.enter_async_context(brokers[node].subscribe("orders.created"))
                await nursery.start(_collect, sub, got[name])
            await trio.testing.wait_all_tasks_blocked()
            for i in range(100):
                await brokers["a"].publish(
                    "orders.created", b"%d" % i, metadata={"x-tenant": "t1"}, content_type="text"
                )
            await trio.testing.wait_all_tasks_blocked()
            for name, messages in got.items():
                assert _seqs(messages) == list(range(100)), name
                assert {(m.topic, m.content_type) for m in messages} == {("orders.created", "text")}
                assert all(m.metadata == {"x-tenant": "t1"} for m in messages)
            # b publishes too: its only link is to a, so a's subscriptions get it (and b's own)
            await brokers["b"].publish("orders.created", b"100")
            await trio.testing.wait_all_tasks_blocked()
            assert [_seqs(got[k])[-1] for k in ("a1", "a2", "b")] == [100, 100, 100]
            assert _seqs(got["c"])[-1] == 99  # the tunnel does not relay between links
        nursery.cancel_scope.cancel()


async def test_each_message_goes_to_one_member_of_each_queue_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _network("a", "b", "c") as (_, brokers), trio.open_nursery() as nursery:
        members = {"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
        got: dict[str, list[BrokerMessage]] = {k: [] for k in [*members, "plain", "other"]}
        async with AsyncExitStack() as subs:
            for name, node in members.items():
                sub = await subs.enter_async_context(brokers[node].subscribe("jobs", queue="w"))
                await nursery.start(_collect, sub, got[name])
            other = await subs.enter_async_context(brokers["b"].subscribe("jobs", queue="x"))
            await nursery.start(_collect, other, got["other"])
            plain = await subs.enter_async_context(brokers["c"].subscribe("jobs"))
            await nursery.start(_collect, plain, got["plain"])
            await trio.testing.wait_all_tasks_blocked()
            for i in range(400):
                await brokers["a"].publish("jobs", b"%d" % i, metadata={"k": "v"})
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    shared = [seq for name in members for seq in _seqs(got[name])]
    assert sorted(shared) == list(range(400))  # each exactly once across the group
    assert all(got[name] for name in members)  # every member took a share
    for name in members:
        assert _seqs(got[name]) == sorted(_seqs(got[name]))  # in order per member
    assert _seqs(got["other"]) == list(range(400))  # a group of one gets everything
    assert _seqs(got["plain"]) == list(range(400))
    assert all(m.metadata == {"k": "v"} for m in got["b1"] + got["other"])


async def test_unsubscribe_stops_delivery_there_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _network("a", "b") as (tunnels, brokers), trio.open_nursery() as nursery:
        got_a: list[BrokerMessage] = []
        got_b: list[BrokerMessage] = []
        async with brokers["a"].subscribe("t") as sub_a:
            await nursery.start(_collect, sub_a, got_a)
            async with brokers["b"].subscribe("t") as sub_b:
                await nursery.start(_collect, sub_b, got_b)
                await trio.testing.wait_all_tasks_blocked()
                await brokers["a"].publish("t", b"0")
                await trio.testing.wait_all_tasks_blocked()
            assert topic_channel("t") not in tunnels["b"].listening()
            await trio.testing.wait_all_tasks_blocked()  # a hears that b stopped listening
            assert topic_channel("t") not in tunnels["a"].announced()
            await brokers["a"].publish("t", b"1")
            await trio.testing.wait_all_tasks_blocked()
            assert (_seqs(got_a), _seqs(got_b)) == ([0, 1], [0])
        async with brokers["b"].subscribe("t", queue="q") as sub_q:
            await trio.testing.wait_all_tasks_blocked()
            assert queue_channel("t", "q") in tunnels["a"].announced()
        await trio.testing.wait_all_tasks_blocked()
        assert tunnels["a"].announced() == {} and tunnels["b"].listening() == set()
        await brokers["a"].publish("t", b"2")  # nobody: not an error
        assert sub_q.queue == "q"
        nursery.cancel_scope.cancel()


async def test_a_publish_right_after_the_link_is_up_waits_for_the_announce(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """b subscribed before it was linked; a publishes the moment its link is up, before b's
    announce has arrived: the multicast alone would reach nobody."""
    hub = f"tunnel-broker-{next(_hubs)}"
    got: list[BrokerMessage] = []
    async with (
        open_tunnel(MemoryTransport(hub), address="a", id="a") as a,
        TunnelBroker(a) as broker_a,
        open_tunnel(MemoryTransport(hub), id="b") as b,
        TunnelBroker(b) as broker_b,
        broker_b.subscribe("late") as sub,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(_collect, sub, got)
        a_link_up = trio.Event()

        async def link_then_signal() -> None:
            await a.wait_links(1)
            a_link_up.set()

        nursery.start_soon(link_then_signal)
        await b.connect("a")
        await a_link_up.wait()
        assert topic_channel("late") not in a.announced()
        await broker_a.publish("late", b"7")
        await trio.testing.wait_all_tasks_blocked()
        assert _seqs(got) == [7]
        nursery.cancel_scope.cancel()


async def test_a_topic_nobody_subscribes_costs_the_wait_once_per_set_of_links(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _network("a", "b") as (_, brokers):
        start = trio.current_time()
        await brokers["a"].publish("void", b"0")
        assert trio.current_time() - start == pytest.approx(1.0)
        start = trio.current_time()
        for i in range(10):
            await brokers["a"].publish("void", b"%d" % i)
        assert trio.current_time() == start


async def test_a_queue_group_fails_over_when_a_member_link_dies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = f"tunnel-broker-{next(_hubs)}"
    got: Counter[str] = Counter()
    c_scope = trio.CancelScope()

    async def member(
        name: str, scope: trio.CancelScope, task_status: trio.TaskStatus[None]
    ) -> None:
        with scope:
            async with (
                open_tunnel(MemoryTransport(hub), peers=["a"], id=name) as tunnel,
                TunnelBroker(tunnel) as broker,
                broker.subscribe("jobs", queue="w") as sub,
            ):
                await tunnel.wait_links(1)
                task_status.started()
                async for _ in sub:
                    got[name] += 1

    async with (
        open_tunnel(MemoryTransport(hub), address="a", id="a") as a,
        TunnelBroker(a, rng=random.Random(3)) as broker,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(member, "b", trio.CancelScope())
        await nursery.start(member, "c", c_scope)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(50):
            await broker.publish("jobs", b"%d" % i)
        await trio.testing.wait_all_tasks_blocked()
        assert got["b"] + got["c"] == 50 and got["b"] and got["c"]
        c_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert len(a.links()) == 1
        for i in range(50):
            await broker.publish("jobs", b"%d" % i)
        await trio.testing.wait_all_tasks_blocked()
        assert got["b"] + got["c"] == 100
        nursery.cancel_scope.cancel()


async def test_a_group_whose_only_member_refuses_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """b announced the group, then stopped listening; a's unicast open is refused before
    a hears of it: publish raises BrokerError naming the group."""
    async with _network("a", "b") as (tunnels, brokers):
        async with brokers["b"].subscribe("jobs", queue="w"):
            await trio.testing.wait_all_tasks_blocked()
        # a already heard b stop listening; put the mapping back as if that were in flight
        (link,) = tunnels["a"].links()
        tunnels["a"]._core._links[link].channels[queue_channel("jobs", "w")] = trio.current_time()
        with pytest.raises(BrokerError, match="jobs queue=w"):
            await brokers["a"].publish("jobs", b"0")


async def test_broker_must_be_entered() -> None:
    async with open_tunnel(MemoryTransport(f"tunnel-broker-{next(_hubs)}")) as tunnel:
        broker = TunnelBroker(tunnel)
        with pytest.raises(RuntimeError, match="async with"):
            await broker.publish("t", b"")
