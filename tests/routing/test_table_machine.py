"""Hypothesis state machine: any sequence of table operations keeps the table's invariants.

- the table holds exactly what a plain dict model says (identity = every field but metric);
- the hash ignores the metric and follows the identity;
- queries return the matching routes sorted by metric, and `best` is minimal per group with
  our own route winning ties;
- a watcher sees every change in order, or exactly one `WatchOverflowed` counting what it
  missed, after which a re-read of the table brings its mirror level again.
"""

from __future__ import annotations

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trimicro.routing import (
    ANY,
    Route,
    RouteEvent,
    RouteExists,
    RouteNotFound,
    Table,
    WatchOverflowed,
)
from trimicro.routing._route import RouteKey
from trimicro.routing._table import EventType, TableWatcher

SERVICES = ["s0", "s1", "s2"]
routes = st.builds(
    Route,
    service=st.sampled_from(SERVICES),
    address=st.sampled_from(["a", "b"]),
    gateway=st.sampled_from(["", "g"]),
    network=st.sampled_from(["n1", "n2"]),
    router=st.sampled_from(["r1", "r2"]),
    link=st.sampled_from(["local", "network"]),
    metric=st.integers(0, 4),
)
wildcard = st.one_of(st.just(ANY), st.sampled_from(["n1", "n2", "r1", "r2", "s0", "s1"]))


@attrs.define
class Follower:
    """A watcher and the copy of the table it keeps from the events it reads."""

    watcher: TableWatcher
    service: str | None
    mirror: dict[RouteKey, Route] = attrs.field(factory=dict)
    unread: list[RouteEvent] = attrs.field(factory=list)  # changes it has yet to read


class TableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = Table()
        self.model: dict[RouteKey, Route] = {}
        self.now = 0.0
        self.followers = [
            Follower(self.table.watch(size=6), None),
            Follower(self.table.watch("s0", size=3), "s0"),
        ]

    def _tick(self) -> float:
        self.now += 1.0
        return self.now

    def _emitted(self, event: RouteEvent | None) -> None:
        if event is None:
            return
        assert event.timestamp == self.now
        for follower in self.followers:
            if follower.service in (None, event.route.service):
                follower.unread.append(event)

    @rule(route=routes)
    def create(self, route: Route) -> None:
        try:
            event = self.table.create(route, self._tick())
        except RouteExists:
            assert route.key in self.model
            return
        assert route.key not in self.model
        assert event.type is EventType.CREATE
        self.model[route.key] = route
        self._emitted(event)

    @rule(route=routes)
    def update(self, route: Route) -> None:
        event = self.table.update(route, self._tick())
        assert (event is None) == (self.model.get(route.key) == route)
        self.model[route.key] = route
        self._emitted(event)

    @rule(route=routes)
    def delete(self, route: Route) -> None:
        try:
            event = self.table.delete(route, self._tick())
        except RouteNotFound:
            assert route.key not in self.model
            return
        assert event.route == self.model.pop(route.key)
        self._emitted(event)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_existing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model)))
        self.delete(self.model[key])

    @rule(service=wildcard, network=wildcard, router=wildcard)
    def query(self, service: str, network: str, router: str) -> None:
        expected = [
            r
            for r in self.model.values()
            if service in (ANY, r.service)
            and network in (ANY, r.network)
            and router in (ANY, r.router)
        ]
        expected.sort(key=lambda r: (r.metric, r.key))
        assert self.table.query(service, network=network, router=router) == expected

    @rule(own=st.sampled_from(["r1", "r2", ""]))
    def best(self, own: str) -> None:
        chosen = self.table.best(own_id=own)
        groups = {(r.service, r.network) for r in self.model.values()}
        assert len(chosen) == len(groups)
        for route in chosen:
            group = [
                r
                for r in self.model.values()
                if (r.service, r.network) == (route.service, route.network)
            ]
            cheapest = min(r.metric for r in group)
            assert route.metric == cheapest
            if any(r.metric == cheapest and r.router == own for r in group):
                assert route.router == own
        assert [r.metric for r in chosen] == sorted(r.metric for r in chosen)

    @rule(index=st.sampled_from([0, 1]))
    def read_watcher(self, index: int) -> None:
        follower = self.followers[index]
        read = []
        while (event := follower.watcher.next_event()) is not None:
            read.append(event)
        if len(follower.unread) > follower.watcher.size:
            assert read == [WatchOverflowed(dropped=len(follower.unread))]
            follower.mirror = {r.key: r for r in self.table.query(follower.service or ANY)}
        else:
            assert read == follower.unread  # every change, in order
            for event in follower.unread:
                if event.type is EventType.DELETE:
                    del follower.mirror[event.route.key]
                else:
                    follower.mirror[event.route.key] = event.route
        follower.unread = []
        wanted = {k: r for k, r in self.model.items() if follower.service in (None, r.service)}
        assert follower.mirror == wanted

    @invariant()
    def table_is_the_model(self) -> None:
        assert len(self.table) == len(self.model)
        assert {r.key: r for r in self.table.routes()} == self.model

    @invariant()
    def hash_follows_identity_not_metric(self) -> None:
        for route in self.model.values():
            assert attrs.evolve(route, metric=route.metric + 1).hash == route.hash
            assert Route(*route.key, metric=0).hash == route.hash


TestTableMachine = TableMachine.TestCase
