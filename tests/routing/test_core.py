"""The router's sans-io core: local routes, adverts in and out, limits, TTLs, idempotence."""

from __future__ import annotations

import math

import pytest

from trimicro.routing import (
    Advert,
    AdvertLimits,
    AdvertType,
    EventType,
    Route,
    RouteEvent,
    RouterCore,
    Strategy,
)

PEER = "peer"
CREATE, DELETE, UPDATE = EventType.CREATE, EventType.DELETE, EventType.UPDATE


def remote(service: str, address: str = "10.0.0.2:1", metric: int = 1) -> Route:
    return Route(service, address, network="trimicro", router=PEER, metric=metric)


def advert(
    *events: RouteEvent,
    kind: AdvertType = AdvertType.UPDATE,
    sender: str = PEER,
    at: float = 0.0,
    ttl: float = 300.0,
) -> Advert:
    return Advert(sender, kind, at, ttl, events)


def started(strategy: Strategy = Strategy.ALL, **kwargs: object) -> RouterCore:
    core = RouterCore("me", strategy=strategy, **kwargs)  # type: ignore[arg-type]
    core.start(0.0)
    assert core.adverts_to_send(0.0) == []  # an empty table announces nothing
    return core


def events_of(adverts: list[Advert]) -> list[tuple[EventType, str]]:
    return [(e.type, e.route.address) for a in adverts for e in a.events]


# --- local routes ------------------------------------------------------------------------------


def test_local_routes_follow_the_registry_and_are_announced_at_start() -> None:
    core = RouterCore("me", network="net")
    core.set_local("greeter", "1", ["a:1", "b:1"], 0.0)
    core.set_local("greeter", "2", ["b:1", "c:1"], 0.0)  # b serves both versions: one route
    assert [r.address for r in core.lookup("greeter", now=0.0)] == ["a:1", "b:1", "c:1"]
    assert core.lookup("greeter", now=0.0)[0] == Route(
        "greeter", "a:1", "", "net", "me", "local", 1
    )
    core.start(0.0)
    (announce,) = core.adverts_to_send(0.0)
    assert announce.type is AdvertType.ANNOUNCE
    assert [e.type for e in announce.events] == [CREATE]  # LOCAL: one route per service
    core.set_local("greeter", "1", [], 1.0)
    assert [r.address for r in core.lookup("greeter", now=1.0)] == ["b:1", "c:1"]
    core.replace_local({("other", "1"): ["d:1"]}, 2.0)
    assert core.lookup("greeter", now=2.0) == []
    assert core.statistics().local_routes == 1


def test_a_gateway_makes_local_routes_metric_2() -> None:
    core = RouterCore("me", gateway="gw:1")
    core.set_local("s", "1", ["a:1"], 0.0)
    assert core.lookup("s", now=0.0) == [Route("s", "a:1", "gw:1", "trimicro", "me", "local", 2)]


def test_lookup_filters_by_router_network_and_gateway() -> None:
    core = started()
    core.set_local("s", "1", ["a:1"], 0.0)
    theirs = Route("s", "b:1", "gw", "other", PEER, "network", 5)
    core.receive_advert(advert(RouteEvent(CREATE, theirs, 0.0)), 0.0)
    assert [r.address for r in core.lookup("s", now=0.0)] == ["a:1", "b:1"]
    assert core.lookup("s", router=PEER, now=0.0) == [theirs]
    assert core.lookup("s", network="other", gateway="gw", now=0.0) == [theirs]
    assert [r.address for r in core.lookup("s", gateway="", now=0.0)] == ["a:1"]


# --- adverts in --------------------------------------------------------------------------------


def test_own_adverts_and_own_routes_are_ignored() -> None:
    core = started()
    mine = Route("s", "a:1", router="me")
    core.receive_advert(advert(RouteEvent(CREATE, mine, 0.0), sender="me"), 0.0)
    core.receive_advert(advert(RouteEvent(CREATE, mine, 0.0)), 0.0)  # echoed by a peer
    assert len(core.table) == 0
    assert core.statistics().events_own == 1


def test_duplicate_and_reordered_adverts_are_harmless() -> None:
    core = started()
    old = advert(RouteEvent(CREATE, remote("s", metric=5), 1.0), at=1.0)
    new = advert(RouteEvent(UPDATE, remote("s", metric=2), 2.0), at=2.0)
    gone = advert(RouteEvent(DELETE, remote("s"), 3.0), at=3.0)
    core.receive_advert(new, 10.0)
    core.receive_advert(old, 10.0)  # late: ignored
    core.receive_advert(new, 10.0)  # again: ignored
    assert core.lookup("s", now=10.0) == [remote("s", metric=2)]
    core.receive_advert(gone, 11.0)
    core.receive_advert(new, 12.0)  # an announcement older than the withdrawal stays dead
    assert core.lookup("s", now=12.0) == []
    assert core.statistics().events_stale == 3


def test_events_in_one_advert_apply_in_timestamp_order() -> None:
    core = started()
    both = advert(RouteEvent(DELETE, remote("s"), 2.0), RouteEvent(CREATE, remote("s"), 1.0))
    core.receive_advert(both, 5.0)
    assert core.lookup("s", now=5.0) == []


def test_the_advert_ttl_is_enforced_and_refreshed() -> None:
    core = started(advert_ttl=300.0)
    core.receive_advert(advert(RouteEvent(CREATE, remote("s"), 0.0), ttl=50.0), 0.0)
    core.receive_advert(advert(RouteEvent(UPDATE, remote("s"), 30.0), ttl=50.0, at=30.0), 30.0)
    assert core.get_timer() == 0.5  # relaying the new route comes first (fresh_delay)
    core.handle_timer(0.5)
    assert core.get_timer() == 10.0  # then the events tick
    core.handle_timer(79.9)
    assert core.lookup("s", now=79.9) != []
    core.handle_timer(80.0)  # 30 + 50: withdrawn
    assert len(core.table) == 0
    assert core.statistics().routes_expired == 1


def test_a_peers_ttl_is_clamped() -> None:
    core = started(limits=AdvertLimits(max_ttl=60.0))
    core.receive_advert(advert(RouteEvent(CREATE, remote("s"), 0.0), ttl=1e9), 0.0)
    assert core.lookup("s", now=59.0) != []
    assert core.lookup("s", now=60.0) == []


def test_adverts_are_capped_per_peer() -> None:
    core = started(limits=AdvertLimits(peer_burst=4, peer_interval=10.0))
    for i in range(6):
        core.receive_advert(advert(RouteEvent(CREATE, remote(f"s{i}"), i), at=i), 0.0)
    assert core.table.services() == ["s0", "s1", "s2", "s3"]
    core.receive_advert(advert(RouteEvent(CREATE, remote("late"), 9.0), at=9.0), 2.5)  # +1
    assert "late" in core.table.services()
    assert core.statistics().adverts_refused == 2


def test_a_route_flood_from_one_router_is_bounded() -> None:
    limits = AdvertLimits(max_events=50, max_routes_per_peer=120, max_learned=150)
    core = started(limits=limits)
    for batch in range(4):
        flood = [RouteEvent(CREATE, remote(f"s{batch}-{i}"), batch) for i in range(50)]
        core.receive_advert(advert(*flood, at=batch), 0.0)
    assert len(core.table) == 120
    other = [RouteEvent(CREATE, Route(f"o{i}", "x", router="other"), 0.0) for i in range(50)]
    core.receive_advert(advert(*other, sender="other"), 0.0)
    assert len(core.table) == 150  # the overall limit
    core.receive_advert(advert(*other, *other[:1], sender="third"), 0.0)  # 51 > max_events
    stats = core.statistics()
    assert (stats.routes_refused, stats.adverts_refused) == (80 + 20, 1)


def test_peers_beyond_the_limit_are_refused_until_idle_ones_are_swept() -> None:
    core = started(limits=AdvertLimits(max_peers=2))
    for peer in ("p1", "p2", "p3"):
        core.receive_advert(advert(sender=peer), 0.0)  # no routes held: swept when needed
    assert core.statistics().adverts_refused == 0
    for peer in ("p1", "p2", "p3"):
        route = Route("s", peer, router=peer)
        core.receive_advert(advert(RouteEvent(CREATE, route, 0.0), sender=peer), 0.0)
    assert core.statistics().adverts_refused == 1
    assert core.statistics().peers == 2


def test_drop_router_withdraws_its_routes() -> None:
    core = started()
    core.receive_advert(advert(RouteEvent(CREATE, remote("s"), 0.0)), 0.0)
    assert core.drop_router(PEER, 1.0) == 1
    assert len(core.table) == 0
    with pytest.raises(ValueError):
        core.drop_router("me", 1.0)


# --- adverts out -------------------------------------------------------------------------------


def test_changes_go_out_at_the_events_tick_and_the_table_every_two_minutes() -> None:
    core = started()
    core.set_local("s", "1", ["a:1"], 3.0)
    assert core.get_timer() == 10.0
    core.handle_timer(10.0)
    (update,) = core.adverts_to_send(10.0)
    assert (update.type, events_of([update])) == (AdvertType.UPDATE, [(CREATE, "a:1")])
    assert update.events[0].timestamp == 3.0
    for tick in range(20, 120, 10):
        core.handle_timer(float(tick))
    assert core.adverts_to_send(110.0) == []
    core.handle_timer(120.0)
    (table,) = core.adverts_to_send(120.0)
    assert events_of([table]) == [(UPDATE, "a:1")]
    assert table.timestamp == table.events[0].timestamp == 120.0


def test_solicitations_are_answered_with_the_whole_table_coalesced() -> None:
    core = started()
    core.replace_local({("s", "1"): ["a:1", "b:1"], ("t", "1"): ["c:1"]}, 0.0)
    core.handle_timer(10.0)
    core.adverts_to_send(10.0)
    ask = advert(kind=AdvertType.SOLICITATION, sender="p1")
    core.receive_advert(ask, 10.5)
    core.receive_advert(advert(kind=AdvertType.SOLICITATION, sender="p2"), 10.5)
    assert core.get_timer() <= 10.5  # due now
    core.handle_timer(10.5)
    (answer,) = core.adverts_to_send(10.5)
    assert answer.type is AdvertType.UPDATE
    assert sorted(events_of([answer])) == [(UPDATE, "a:1"), (UPDATE, "b:1"), (UPDATE, "c:1")]
    core.receive_advert(advert(kind=AdvertType.SOLICITATION, sender="p1", at=1.0), 11.0)
    assert core.get_timer() == 11.5  # answers are at least a second apart
    core.handle_timer(11.5)
    assert len(core.adverts_to_send(11.5)) == 1


def test_solicit_asks_with_our_table() -> None:
    core = started()
    core.set_local("s", "1", ["a:1"], 0.0)
    core.solicit(1.0)
    (ask,) = core.adverts_to_send(1.0)
    assert (ask.type, events_of([ask])) == (AdvertType.SOLICITATION, [(UPDATE, "a:1")])
    quiet = started(Strategy.NONE)
    quiet.set_local("s", "1", ["a:1"], 0.0)
    quiet.solicit(1.0)
    (ask,) = quiet.adverts_to_send(1.0)
    assert ask.events == ()  # strategy NONE still asks, but tells nothing


def test_big_tables_are_split_across_adverts() -> None:
    core = started(limits=AdvertLimits(max_events=10))
    core.replace_local({(f"s{i:02}", "1"): ["a:1"] for i in range(25)}, 0.0)
    core.handle_timer(120.0)
    sizes = [len(a.events) for a in core.adverts_to_send(120.0)]
    assert sizes == [10, 10, 5, 10, 10, 5]  # the events tick, then the table


def test_under_local_a_withdrawn_best_route_is_replaced_in_the_same_tick() -> None:
    core = started(Strategy.LOCAL)
    core.set_local("s", "1", ["a:1", "b:1"], 0.0)
    core.handle_timer(10.0)
    core.adverts_to_send(10.0)
    core.set_local("s", "1", ["b:1"], 11.0)
    core.handle_timer(20.0)
    assert events_of(core.adverts_to_send(20.0)) == [(DELETE, "a:1"), (UPDATE, "b:1")]


def test_learned_routes_are_not_passed_on_under_local() -> None:
    core = started(Strategy.LOCAL)
    core.receive_advert(advert(RouteEvent(CREATE, remote("s"), 0.0)), 1.0)
    core.handle_timer(10.0)
    core.handle_timer(120.0)
    assert core.adverts_to_send(120.0) == []


def test_ticks_missed_are_skipped_not_bunched() -> None:
    core = started()
    core.set_local("s", "1", ["a:1"], 1.0)
    core.handle_timer(35.0)
    assert len(core.adverts_to_send(35.0)) == 1
    assert core.get_timer() == 40.0
    assert math.isinf(RouterCore("idle").get_timer())


def test_news_is_relayed_after_the_batching_delay_and_other_changes_at_the_tick() -> None:
    core = started(strategy=Strategy.BEST)
    core.receive_advert(advert(RouteEvent(CREATE, remote("s"), 1.0), at=1.0), 1.0)
    core.receive_advert(advert(RouteEvent(CREATE, remote("t"), 1.2), at=1.2), 1.2)
    assert core.get_timer() == 1.5  # 1.0 + fresh_delay: both go in one advert
    core.handle_timer(1.5)
    (relayed,) = core.adverts_to_send(1.5)
    assert sorted(e.route.service for e in relayed.events) == ["s", "t"]
    # A new metric for a known route is not news: it waits for the events tick (damping).
    core.receive_advert(advert(RouteEvent(UPDATE, remote("t", metric=5), 2.0), at=2.0), 2.0)
    core.handle_timer(2.5)
    assert core.adverts_to_send(2.5) == []
    # A withdrawal is news: it goes after the batching delay, as in BGP.
    core.receive_advert(advert(RouteEvent(DELETE, remote("s"), 3.0), at=3.0), 3.0)
    core.handle_timer(3.5)
    (withdrawn,) = core.adverts_to_send(3.5)
    assert [(e.type, e.route.service) for e in withdrawn.events] == [(DELETE, "s")]
    core.handle_timer(10.0)
    (tick,) = core.adverts_to_send(10.0)
    assert sorted((e.type.name, e.route.service) for e in tick.events) == [
        ("DELETE", "s"),  # repeated, harmlessly: receivers drop what they already applied
        ("UPDATE", "t"),
    ]
