"""Routes, the table's semantics and watchers, strategies, and the sans-io import rule."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs
import pytest

from trimicro.routing import (
    ANY,
    EventType,
    Route,
    RouteEvent,
    RouteExists,
    RouteNotFound,
    Strategy,
    Table,
    TableWatcher,
    WatchOverflowed,
    best_routes,
)
from trimicro.routing._route import fnv1_64
from trimicro.routing._strategy import admits_event, advertised_routes

SRC = Path(__file__).parents[2] / "src" / "trimicro" / "routing"
SANS_IO = [
    "_route.py",
    "_table.py",
    "_flap.py",
    "_advert.py",
    "_strategy.py",
    "_wire.py",
    "_core.py",
]
FORBIDDEN = {"trio", "socket", "time", "random", "asyncio", "threading"}


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_import_no_io(module: str) -> None:
    imported = set()
    for node in ast.walk(ast.parse((SRC / module).read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


# --- the route ---------------------------------------------------------------------------------


def test_fnv1_64_matches_go_hash_fnv_new64() -> None:
    assert fnv1_64(b"") == 0xCBF29CE484222325
    assert fnv1_64(b"a") == 0xAF63BD4C8601B7BE
    assert fnv1_64(b"foobar") == 0x340D8765A4DDA9C2


def test_route_hash_is_go_micros_and_excludes_the_metric() -> None:
    route = Route("greeter", "10.0.0.1:9000", "gw", "net", "r-1", "local", 7)
    assert route.hash == fnv1_64(b"greeter10.0.0.1:9000gwnetr-1local")
    assert attrs.evolve(route, metric=99).hash == route.hash
    assert attrs.evolve(route, router="r-2").hash != route.hash
    assert route.key == ("greeter", "10.0.0.1:9000", "gw", "net", "r-1", "local")


def test_table_keys_by_fields_where_the_concatenated_hash_is_ambiguous() -> None:
    first, second = Route("ab", "c"), Route("a", "bc")
    assert first.hash == second.hash  # go-micro's hash cannot tell these apart
    table = Table()
    table.create(first, 0.0)
    table.create(second, 0.0)
    assert len(table) == 2


# --- the table ---------------------------------------------------------------------------------


def test_create_emits_create_and_refuses_a_duplicate_unchanged() -> None:
    table = Table()
    route = Route("s", "a", metric=3)
    assert table.create(route, 1.0) == RouteEvent(EventType.CREATE, route, 1.0)
    with pytest.raises(RouteExists):
        table.create(attrs.evolve(route, metric=1), 2.0)
    assert table.query("s") == [route]


def test_update_inserts_or_overwrites_and_emits_only_on_change() -> None:
    table = Table()
    route = Route("s", "a", metric=3)
    assert table.update(route, 1.0) == RouteEvent(EventType.UPDATE, route, 1.0)
    assert table.update(route, 2.0) is None  # nothing changed: nothing to tell
    cheaper = attrs.evolve(route, metric=1)
    assert table.update(cheaper, 3.0) == RouteEvent(EventType.UPDATE, cheaper, 3.0)
    assert table.query() == [cheaper]
    assert len(table) == 1


def test_delete_emits_the_route_as_it_was_or_raises() -> None:
    table = Table()
    route = Route("s", "a", metric=3)
    table.create(route, 0.0)
    assert table.delete(attrs.evolve(route, metric=0), 1.0) == RouteEvent(
        EventType.DELETE, route, 1.0
    )
    with pytest.raises(RouteNotFound):
        table.delete(route, 2.0)
    assert table.discard(route, 2.0) is None
    assert table.services() == []


def test_query_matches_wildcards_and_exact_fields_sorted_by_metric() -> None:
    table = Table()
    routes = [
        Route("s", "a", network="n1", router="r1", metric=5),
        Route("s", "b", gateway="g", network="n1", router="r2", metric=2),
        Route("s", "c", network="n2", router="r1", link="network", metric=9),
        Route("t", "d", network="n1", router="r1", metric=1),
    ]
    for route in routes:
        table.create(route, 0.0)
    assert table.query("s") == [routes[1], routes[0], routes[2]]
    assert table.query(network="n1") == [routes[3], routes[1], routes[0]]
    assert table.query("s", router="r1", network=ANY) == [routes[0], routes[2]]
    assert table.query(gateway="g") == [routes[1]]
    assert table.query(link="network") == [routes[2]]
    assert table.query("s", address="a", router="r2") == []
    assert table.query("unknown") == []


def test_best_is_cheapest_per_service_and_network_and_own_route_wins_ties() -> None:
    mine = Route("s", "a", network="n", router="me", metric=2)
    theirs = Route("s", "b", network="n", router="them", metric=2)
    cheaper_elsewhere = Route("s", "c", network="m", router="them", metric=1)
    dearer = Route("s", "d", network="n", router="them", metric=3)
    table = Table()
    for route in (theirs, dearer, mine, cheaper_elsewhere):
        table.create(route, 0.0)
    assert table.best("s", own_id="me") == [cheaper_elsewhere, mine]
    assert table.best("s", network="n", own_id="other") == [mine]  # tie: smallest identity
    assert best_routes([dearer, theirs], "me") == [theirs]


def test_strategies_choose_what_is_advertised() -> None:
    own = [Route("s", "a", router="me"), Route("s", "b", router="me", metric=5)]
    learned = [Route("s", "c", router="them"), Route("t", "d", router="them", link="network")]
    routes = own + learned
    assert advertised_routes(Strategy.ALL, routes, "me") == routes
    assert advertised_routes(Strategy.BEST, routes, "me") == [own[0], learned[1]]
    assert advertised_routes(Strategy.LOCAL, routes, "me") == [own[0]]
    assert advertised_routes(Strategy.NONE, routes, "me") == []
    assert admits_event(Strategy.LOCAL, own[1], "me")
    assert not admits_event(Strategy.LOCAL, learned[0], "me")  # link "local", but not ours
    assert admits_event(Strategy.BEST, learned[0], "me")
    assert not admits_event(Strategy.NONE, own[0], "me")


# --- watchers ----------------------------------------------------------------------------------


def drain(watcher: TableWatcher) -> list[RouteEvent]:
    events = []
    while (event := watcher.next_event()) is not None:
        assert isinstance(event, RouteEvent)
        events.append(event)
    return events


def test_watcher_sees_changes_in_order_with_its_service_filter() -> None:
    table = Table()
    everything, only_s = table.watch(), table.watch("s")
    table.create(Route("s", "a"), 1.0)
    table.create(Route("t", "b"), 2.0)
    table.update(Route("s", "a", metric=4), 3.0)
    table.delete(Route("s", "a"), 4.0)
    seen = [(e.type, e.route.service, e.timestamp) for e in drain(everything)]
    assert seen == [
        (EventType.CREATE, "s", 1.0),
        (EventType.CREATE, "t", 2.0),
        (EventType.UPDATE, "s", 3.0),
        (EventType.DELETE, "s", 4.0),
    ]
    assert [e.timestamp for e in drain(only_s)] == [1.0, 3.0, 4.0]


def test_watcher_overflow_is_one_marker_then_changes_after_it() -> None:
    table = Table()
    watcher = table.watch(size=3)
    for i in range(5):
        table.create(Route("s", str(i)), float(i))
    table.create(Route("s", "late"), 9.0)  # while overflowed: counted, covered by a re-read
    assert watcher.next_event() == WatchOverflowed(dropped=6)
    assert watcher.next_event() is None
    table.delete(Route("s", "0"), 10.0)
    assert watcher.next_event() == RouteEvent(EventType.DELETE, Route("s", "0"), 10.0)


def test_closed_watcher_gets_nothing() -> None:
    table = Table()
    watcher = table.watch()
    watcher.close()
    table.create(Route("s", "a"), 0.0)
    assert watcher.closed and watcher.next_event() is None
    with pytest.raises(ValueError):
        table.watch(size=0)
