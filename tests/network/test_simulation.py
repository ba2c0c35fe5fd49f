"""Network nodes under MockClock: convergence, calls across sites, deadlines, partitions."""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

import trimicro
from trimicro.network import NetworkOptions, static_resolver
from trimicro.rpc import Client
from trimicro.testing._network import SimulatedNetwork, open_simulated_network

LINE = [(0, 1), (1, 2)]


def _client(net: SimulatedNetwork, site: int):  # type: ignore[no-untyped-def]
    return trimicro.open_client(
        registry=net.registry(site), transport=net.transport, proxy="trimicro.network"
    )


async def test_a_line_of_three_converges_and_calls_cross_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_simulated_network(3, edges=LINE, seed=1) as net:
        assert await net.wait_converged() <= 30.0
        a, c = net.nodes[0], net.nodes[2]
        (route,) = [r for r in a.routes() if r.service == "svc-2"]
        (local,) = [r for r in c.routes() if r.service == "svc-2"]
        assert route.metric > local.metric == 1  # farther away costs more
        assert route.gateway == "n1"  # through the middle node
        client: Client
        async with _client(net, 0) as client:
            assert await client.call("svc-2", "Svc.Where", None) == 2
            assert await client.call("svc-0", "Svc.Where", None) == 0  # a local one too


async def test_a_deadline_crosses_two_hops_and_cancels_the_remote_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_simulated_network(3, edges=LINE, seed=2) as net:
        await net.wait_converged()
        async with _client(net, 0) as client:
            start = trio.current_time()
            with pytest.raises(trio.TooSlowError):
                with trio.fail_after(1):
                    await client.call("svc-2", "Svc.Sleep", 10.0)
            gave_up = trio.current_time()
            await trio.sleep(0.5)  # links have a 5 ms delay: let a cancel frame arrive
        assert gave_up - start == pytest.approx(1.0)
        # The handler two hops away ended when the budget did, not 9 s later.
        assert net.sleep_ended[2] == pytest.approx(gave_up, abs=0.05)


async def test_a_partition_withdraws_routes_and_healing_restores_them(
    autojump_clock: trio.testing.MockClock,
) -> None:
    options = NetworkOptions()
    async with open_simulated_network(3, edges=LINE, seed=3, options=options) as net:
        await net.wait_converged()
        net.partition([2])
        cut = trio.current_time()
        while any(r.service == "svc-2" for r in net.nodes[0].routes()):
            await trio.sleep(0.5)
        withdrawn = trio.current_time() - cut
        assert withdrawn <= options.prune_after
        net.heal()
        healed = trio.current_time()
        await net.wait_converged()
        assert trio.current_time() - healed <= 2 * options.events_interval + 5.0


@pytest.mark.parametrize("seed", [1, 2, 5])
async def test_a_partition_in_two_halves_withdraws_routes_across_it_and_heals(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    options = NetworkOptions()
    async with open_simulated_network(25, seed=seed) as net:
        await net.wait_converged()
        left, right = range(12), range(12, 25)

        def across() -> int:
            count = 0
            for here, there in ((left, right), (right, left)):
                for i in here:
                    known = {r.service for r in net.nodes[i].routes()}
                    count += sum(f"svc-{j}" in known for j in there)
            return count

        net.partition(left)
        cut = trio.current_time()
        while across():
            await trio.sleep(0.5)
        assert trio.current_time() - cut <= options.prune_after
        net.heal()
        healed = trio.current_time()
        await net.wait_converged()
        assert trio.current_time() - healed <= 2 * options.events_interval


@pytest.mark.parametrize("n", [25, 100])
async def test_random_networks_converge_within_three_advert_intervals(
    n: int, autojump_clock: trio.testing.MockClock
) -> None:
    real = time.perf_counter()
    async with open_simulated_network(n, seed=n) as net:
        took = await net.wait_converged()
        assert took <= 3 * NetworkOptions().events_interval
    assert time.perf_counter() - real < 60


async def test_a_node_without_the_token_is_refused_and_learns_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_simulated_network(
        3, edges=LINE, seed=4, token="s3cret", tokens={2: None}
    ) as net:
        await trio.sleep(60)
        assert net.missing_routes([0, 1]) == 2  # each knows the other, neither svc-2
        assert {r.service for r in net.nodes[2].routes()} == {"svc-2", "trimicro.network"}
        assert net.nodes[1].graph.peers() == [net.nodes[0].info]


async def test_resolvers_run_every_minute_and_network_connect_dials(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_simulated_network(3, edges=[], seed=5) as net:
        await trio.sleep(5)
        assert net.missing_routes() == 6  # three islands
        # A resolver that learns of node 0 is asked again within a minute...
        net.nodes[1]._resolver = static_resolver([f"{net.run}-n0"])
        await trio.sleep(61)
        assert net.missing_routes([0, 1]) == 2  # 0 and 1 found each other, not svc-2
        # ...and Network.Connect dials at once.
        async with _client(net, 2) as client:
            reply = await client.call("trimicro.network", "Network.Connect",
                                      {"nodes": [f"{net.run}-n1"]})  # fmt: skip
            assert reply == {"dialling": 1}
            with pytest.raises(trimicro.errors.Error) as caught:
                await client.call("trimicro.network", "Network.Connect", {"nodes": ["a b"]})
            assert caught.value.code == 400 and "'a b'" in caught.value.detail
        assert await net.wait_converged() < 10


async def test_a_publish_reaches_every_site_once_even_around_a_cycle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    triangle = [(0, 1), (1, 2), (0, 2), (2, 3)]
    async with open_simulated_network(4, edges=triangle, seed=6) as net:
        await net.wait_converged()
        async with _client(net, 0) as client:
            for n in range(3):
                await client.publish("news", {"n": n})
        await trio.sleep(1)
    assert {site: len(messages) for site, messages in net.received.items()} == {
        0: 3,
        1: 3,
        2: 3,
        3: 3,
    }
    assert net.received[3] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_the_registry_resolver_finds_nodes_of_the_same_network(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from trimicro.network import open_network_node, registry_resolver
    from trimicro.registry import open_registry
    from trimicro.session import MemoryTransport

    url = "memory://resolver-site"

    def node(name: str, **extra: object):  # type: ignore[no-untyped-def]
        return open_network_node(
            registry=url,
            link_transport=MemoryTransport("resolver-links"),
            address=f"link-{name}",
            transport="memory://resolver-rpc",
            rpc_address=f"rpc-{name}:0",
            id=name,
            **extra,  # type: ignore[arg-type]
        )

    async with open_registry(url) as registry:
        finder = registry_resolver(registry, "trimicro.network")
        async with node("a") as a, node("b", resolver=finder) as b:
            assert await finder() == ["link-a", "link-b"]
            await trio.sleep(61)  # the resolver runs at start and every minute
            assert [p.id for p in b.graph.peers()] == ["a"]
            assert [p.id for p in a.graph.peers()] == ["b"]


async def test_an_advert_from_a_node_without_a_link_is_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """DESIGN.md §7: adverts from routers outside the graph are ignored — a node learns routes
    only from the peers it has a link to (here: `n2` is two hops from `n0`)."""
    from trimicro.network._messages import AdvertMessage
    from trimicro.routing import Route
    from trimicro.routing._advert import Advert, AdvertType
    from trimicro.routing._table import EventType, RouteEvent

    async with open_simulated_network(3, edges=LINE, seed=4) as net:
        await net.wait_converged()
        a = net.nodes[0]
        now = trio.current_time()
        forged = Route("ghost-svc", "10.9.9.9:1", router="n2", network="trimicro", metric=1)
        advert = Advert(
            "n2", AdvertType.UPDATE, now, events=[RouteEvent(EventType.CREATE, forged, now)]
        )
        before = a.counters["adverts_in"]
        for sender in ("n2", "stranger"):  # linked to n1 only; not in the network at all
            await a._handle(AdvertMessage(sender, advert, (("n2",),)))
        assert a.counters["adverts_in"] == before  # (no checkpoint since `before`)
        assert not [r for r in a.routes() if r.service == "ghost-svc"]
        await a._handle(AdvertMessage("n1", advert, (("n2",),)))  # the same from a linked peer
        assert a.counters["adverts_in"] == before + 1
        assert [r for r in a.routes() if r.service == "ghost-svc"]
