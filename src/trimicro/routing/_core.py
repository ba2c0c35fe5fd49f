"""The router's state machine (sans-io): local routes, adverts in and out, TTLs and ticks.

Fed the registry's view and other routers' adverts with `now`, it returns adverts, in the
project's driving shape:

    core.set_local(service, version, addresses, now)   # from the registry and its watch
    core.replace_local({(service, version): addresses}, now)
    core.start(now)                                     # announce; start the ticks
    core.receive_advert(advert, now)                    # from another router
    core.solicit(now)                                   # ask everyone for their tables
    core.adverts_to_send(now)                           # → [Advert]
    core.get_timer(); core.handle_timer(now)            # ticks and TTL expiry
    core.lookup(service, ..., now=now)                  # routes by metric

Every table change after `start` passes the strategy and then the flap damper; each events
tick sends what the damper releases, at most one event per route and at most
`max_events` events per advert. So a storm of changes to R distinct routes within one tick
costs at most ceil(R / max_events) adverts, however many changes there were.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping

import attrs

from ._advert import (
    ADVERTISE_EVENTS_INTERVAL,
    ADVERTISE_TABLE_INTERVAL,
    DEFAULT_ADVERT_TTL,
    DEFAULT_LIMITS,
    Advert,
    AdvertLimits,
    AdvertType,
    PeerState,
    chunked,
)
from ._flap import DEFAULT_DAMPING, DampingParams, FlapDamper, FlapState
from ._route import DEFAULT_LINK, GATEWAY_METRIC, LOCAL_METRIC, Route, RouteKey
from ._strategy import Strategy, admits_event, advertised_routes, collapses
from ._table import ANY, EventType, RouteEvent, Table

__all__ = ["DEFAULT_NETWORK", "RouterCore", "RouterStatistics"]

DEFAULT_NETWORK = "trimicro"


@attrs.frozen
class RouterStatistics:
    routes: int
    local_routes: int
    learned_routes: int
    peers: int
    suppressed: int  # routes held back by flap damping now
    suppressions: int
    releases: int
    adverts_sent: int
    adverts_received: int
    adverts_refused: int  # over a peer's budget, too many events, or too many peers
    events_own: int  # about our own routes, echoed back: ignored
    events_stale: int  # duplicates and out-of-order: ignored
    routes_refused: int  # over a peer's or the overall route limit
    routes_expired: int  # learned routes whose TTL ran out


@attrs.define
class _Counters:
    adverts_sent: int = 0
    adverts_received: int = 0
    adverts_refused: int = 0
    events_own: int = 0
    events_stale: int = 0
    routes_refused: int = 0
    routes_expired: int = 0


def _any(value: str | None) -> str:
    return ANY if value is None else value


class RouterCore:
    """One router's table and advert logic; see the module docstring for how to drive it."""

    def __init__(
        self,
        id: str,
        *,
        network: str = DEFAULT_NETWORK,
        gateway: str = "",
        strategy: Strategy = Strategy.LOCAL,
        damping: DampingParams = DEFAULT_DAMPING,
        limits: AdvertLimits = DEFAULT_LIMITS,
        events_interval: float = ADVERTISE_EVENTS_INTERVAL,
        table_interval: float = ADVERTISE_TABLE_INTERVAL,
        advert_ttl: float = DEFAULT_ADVERT_TTL,
        damp_learned: bool = True,
    ) -> None:
        if not (events_interval > 0 and table_interval > 0 and advert_ttl > 0):
            raise ValueError("intervals and the advert TTL must be positive")
        self.id, self.network, self.gateway, self.strategy = id, network, gateway, strategy
        self.limits = limits
        self.events_interval, self.table_interval = events_interval, table_interval
        self.advert_ttl = advert_ttl
        #: False: only our own routes are damped (at their origin); learned routes, whose
        #: changes are damped where they start, propagate undamped (the network's choice:
        #: path exploration after a partition is not flapping, RFC 7196).
        self.damp_learned = damp_learned
        self.table = Table()
        self.damper = FlapDamper(damping)
        self._versions: dict[str, dict[str, frozenset[str]]] = {}  # service → version → addrs
        self._peers: dict[str, PeerState] = {}
        self._expiry: dict[RouteKey, float] = {}  # learned route → when its TTL runs out
        self._expiry_heap: list[tuple[float, RouteKey]] = []
        self._outgoing: list[Advert] = []
        self._started = False
        self._next_events = self._next_table = math.inf
        self._answer_wanted = False
        self._last_flush = -math.inf
        self._fresh: list[RouteEvent] = []  # first sightings of learned routes, to relay soon
        self._metric_changes: dict[RouteKey, RouteEvent] = {}  # learned, for the next tick
        self._next_fresh = math.inf
        self._counters = _Counters()

    # --- local routes, from the registry -----------------------------------------------------

    def local_route(self, service: str, address: str) -> Route:
        metric = GATEWAY_METRIC if self.gateway else LOCAL_METRIC
        return Route(service, address, self.gateway, self.network, self.id, DEFAULT_LINK, metric)

    def set_local(self, service: str, version: str, addresses: Iterable[str], now: float) -> None:
        """The nodes of one service version in our registry are now at `addresses`."""
        before = self._local_addresses(service)
        versions = self._versions.setdefault(service, {})
        versions[version] = frozenset(addresses)
        if not versions[version]:
            del versions[version]
        if not versions:
            del self._versions[service]
        after = self._local_addresses(service)
        for address in sorted(before - after):
            self._changed(self.table.discard(self.local_route(service, address), now), now)
        for address in sorted(after - before):
            self._changed(self._put(self.local_route(service, address), now), now)

    def replace_local(self, services: Mapping[tuple[str, str], Iterable[str]], now: float) -> None:
        """The whole registry: versions not in `services` are gone."""
        for service, versions in list(self._versions.items()):
            for version in [v for v in versions if (service, v) not in services]:
                self.set_local(service, version, (), now)
        for (service, version), addresses in services.items():
            self.set_local(service, version, addresses, now)

    def _local_addresses(self, service: str) -> frozenset[str]:
        return frozenset[str]().union(*self._versions.get(service, {}).values())

    def _put(self, route: Route, now: float) -> RouteEvent | None:
        if self.table.get(route.key) is None:
            return self.table.create(route, now)
        return self.table.update(route, now)

    def _changed(self, event: RouteEvent | None, now: float) -> None:
        # Before `start` the announce carries the whole table: no need to damp the load.
        if event is None or not self._started:
            return
        if not admits_event(self.strategy, event.route, self.id):
            return
        route = event.route
        learned = route.router != self.id
        news = learned and event.type in (EventType.CREATE, EventType.DELETE)
        first_sighting = (
            news
            and event.type is EventType.CREATE
            and self.damper.state(route.key) is FlapState.ABSENT
        )
        if learned and event.type is EventType.UPDATE:
            # A learned route's new metric is not a flap: while the network converges after
            # a partition, path exploration moves metrics many times, and damping that would
            # suppress healthy routes (RFC 7196). The latest goes out at the events tick.
            self._metric_changes[route.key] = event
            return
        damped = not learned or self.damp_learned
        if damped and not first_sighting:  # RFC 2439 penalises changes, not appearances
            self.damper.record(event, now)
        withdrawal = news and event.type is EventType.DELETE
        if withdrawal or (news and not self.damper.is_suppressed(route.key)):
            # News goes out after the batching delay, as in BGP: an unsuppressed route is
            # advertised at once and a withdrawal always is (damping never keeps a dead
            # route alive elsewhere). The tick may repeat it, harmlessly.
            self._fresh.append(event)
            self._next_fresh = min(self._next_fresh, now + self.limits.fresh_delay)

    # --- adverts out -------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Announce the table and start the event and table ticks."""
        self._started = True
        self._queue(AdvertType.ANNOUNCE, self._table_events(EventType.CREATE, now), now)
        self._last_flush = now
        self._next_events = now + self.events_interval
        self._next_table = now + self.table_interval

    def solicit(self, now: float) -> None:
        """Ask every router for its table (ours goes with the question)."""
        events = self._table_events(EventType.UPDATE, now)
        self._queue(AdvertType.SOLICITATION, events, now, even_if_empty=True)

    def adverts_to_send(self, now: float) -> list[Advert]:
        out, self._outgoing = self._outgoing, []
        self._counters.adverts_sent += len(out)
        return out

    def _table_events(self, type_: EventType, now: float) -> list[RouteEvent]:
        routes = advertised_routes(self.strategy, self.table.routes(), self.id)
        return [RouteEvent(type_, r, now) for r in routes if not self.damper.is_suppressed(r.key)]

    def _queue(
        self,
        type_: AdvertType,
        events: list[RouteEvent],
        now: float,
        *,
        even_if_empty: bool = False,
    ) -> None:
        for chunk in chunked(events, self.limits.max_events):
            self._outgoing.append(Advert(self.id, type_, now, self.advert_ttl, chunk))
        if not events and even_if_empty:
            self._outgoing.append(Advert(self.id, type_, now, self.advert_ttl))

    # --- time --------------------------------------------------------------------------------

    def get_timer(self) -> float:
        """When `handle_timer` next has work (inf: never, until something else happens)."""
        answer = self._last_flush + self.limits.answer_spacing if self._answer_wanted else math.inf
        expiry = self._expiry_heap[0][0] if self._expiry_heap else math.inf
        return min(self._next_events, self._next_table, answer, expiry, self._next_fresh)

    def handle_timer(self, now: float) -> None:
        self.expire(now)
        if now >= self._next_fresh:
            self._relay_fresh(now)
        if now >= self._next_events:
            self._advertise_events(now)
            self._next_events = self._after(self._next_events, self.events_interval, now)
        if now >= self._next_table:
            self._flush(now)
            self._sweep_peers(now)
            self._next_table = self._after(self._next_table, self.table_interval, now)
        if self._answer_wanted and now >= self._last_flush + self.limits.answer_spacing:
            self._flush(now)

    @staticmethod
    def _after(tick: float, interval: float, now: float) -> float:
        # Drift-free; ticks missed while nobody called are skipped, not run in a burst.
        return tick + interval * max(1, math.floor((now - tick) / interval) + 1)

    def _advertise_events(self, now: float) -> None:
        events = self.damper.tick(now)
        changes, self._metric_changes = self._metric_changes, {}
        for key, event in changes.items():
            current = self.table.get(key) == event.route
            if current and not self.damper.is_suppressed(key) and self._advertised(event.route):
                events.append(event)
        if collapses(self.strategy):
            events += self._replacements(events, now)
        self._queue(AdvertType.UPDATE, events, now)

    def _advertised(self, route: Route) -> bool:
        """Whether the strategy advertises `route` now (under best: it is the best)."""
        if not collapses(self.strategy):
            return True
        candidates = self.table.query(route.service, network=route.network)
        return route in advertised_routes(self.strategy, candidates, self.id)

    def _relay_fresh(self, now: float) -> None:
        """New learned routes, if they are still there and still what we advertise."""
        fresh, self._fresh, self._next_fresh = self._fresh, [], math.inf
        out: list[RouteEvent] = []
        for event in fresh:
            route = event.route
            if event.type is EventType.DELETE:
                if self.table.get(route.key) is None:  # still gone
                    out.append(event)
                continue
            if self.table.get(route.key) != route or self.damper.is_suppressed(route.key):
                continue
            if self._advertised(route):
                out.append(event)
        if collapses(self.strategy):
            out += self._replacements(out, now)
        self._queue(AdvertType.UPDATE, out, now)

    def _replacements(self, events: list[RouteEvent], now: float) -> list[RouteEvent]:
        """Under BEST and LOCAL peers hold one route per (service, network); when that one is
        withdrawn, tell them the next best now rather than at the next table advert."""
        sent = {event.route.key for event in events}
        groups = {(e.route.service, e.route.network) for e in events if e.type is EventType.DELETE}
        out = []
        for service, network in sorted(groups):
            routes = self.table.query(service, network=network)
            for route in advertised_routes(self.strategy, routes, self.id):
                if route.key not in sent and not self.damper.is_suppressed(route.key):
                    out.append(RouteEvent(EventType.UPDATE, route, now))
        return out

    def _flush(self, now: float) -> None:
        self._queue(AdvertType.UPDATE, self._table_events(EventType.UPDATE, now), now)
        self._last_flush = now
        self._answer_wanted = False

    # --- adverts in --------------------------------------------------------------------------

    def receive_advert(self, advert: Advert, now: float) -> None:
        """Apply another router's advert; our own, and adverts over a limit, are dropped."""
        if advert.id == self.id:
            return
        self._counters.adverts_received += 1
        peer = self._peer(advert.id, now)
        if peer is None or len(advert.events) > self.limits.max_events:
            self._counters.adverts_refused += 1
            return
        if not peer.allow(now, self.limits):
            self._counters.adverts_refused += 1
            return
        ttl = min(advert.ttl, self.limits.max_ttl)
        for event in sorted(advert.events, key=lambda e: e.timestamp):
            self._learn(peer, event, ttl, now)
        if advert.type is AdvertType.SOLICITATION:
            self._answer_wanted = True

    def _peer(self, peer_id: str, now: float) -> PeerState | None:
        peer = self._peers.get(peer_id)
        if peer is None and len(self._peers) >= self.limits.max_peers:
            self._sweep_peers(now)
        if peer is None and len(self._peers) < self.limits.max_peers:
            peer = self._peers[peer_id] = PeerState(float(self.limits.peer_burst), now)
        return peer

    def _learn(self, peer: PeerState, event: RouteEvent, ttl: float, now: float) -> None:
        route, key = event.route, event.route.key
        if route.router == self.id:
            self._counters.events_own += 1
            return
        seen = peer.seen.get(key)
        if seen is not None and event.timestamp <= seen[0]:
            self._counters.events_stale += 1
            return
        if not self._room_for(peer, key, event.type, now):
            self._counters.routes_refused += 1
            return
        peer.seen[key] = (event.timestamp, now + ttl)
        if event.type is EventType.DELETE:
            self._expiry.pop(key, None)
            self._changed(self.table.discard(route, now), now)
        else:
            self._expire_at(key, now + ttl)
            self._changed(self._put(route, now), now)

    def _room_for(self, peer: PeerState, key: RouteKey, type_: EventType, now: float) -> bool:
        if key not in peer.seen and not peer.has_room(now, self.limits.max_routes_per_peer):
            return False
        new_route = type_ is not EventType.DELETE and key not in self._expiry
        return not new_route or len(self._expiry) < self.limits.max_learned

    def _sweep_peers(self, now: float) -> None:
        for peer_id, peer in list(self._peers.items()):
            peer.prune(now)
            if not peer.seen:
                del self._peers[peer_id]

    # --- TTLs --------------------------------------------------------------------------------

    def _expire_at(self, key: RouteKey, when: float) -> None:
        self._expiry[key] = when
        heapq.heappush(self._expiry_heap, (when, key))
        if len(self._expiry_heap) > 2 * len(self._expiry) + 64:  # drop superseded entries
            self._expiry_heap = [(w, k) for k, w in self._expiry.items()]
            heapq.heapify(self._expiry_heap)

    def expire(self, now: float) -> int:
        """Withdraw learned routes whose TTL has run out; returns how many."""
        heap, expired = self._expiry_heap, 0
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if self._expiry.get(key) != when:
                continue  # refreshed since
            del self._expiry[key]
            route = self.table.get(key)
            if route is not None:
                expired += 1
                self._changed(self.table.discard(route, now), now)
        self._counters.routes_expired += expired
        return expired

    # --- reads and maintenance ---------------------------------------------------------------

    def lookup(
        self,
        service: str,
        *,
        router: str | None = None,
        network: str | None = None,
        gateway: str | None = None,
        now: float,
    ) -> list[Route]:
        """Routes to `service`, cheapest first; `None` filters match anything."""
        self.expire(now)
        return self.table.query(
            service, router=_any(router), network=_any(network), gateway=_any(gateway)
        )

    def drop_router(self, router_id: str, now: float) -> int:
        """Withdraw every route learned from `router_id` (the network layer prunes routers
        that left its graph); returns how many."""
        if router_id == self.id:
            raise ValueError("our own routes come from the registry, not from adverts")
        routes = self.table.query(router=router_id)
        for route in routes:
            self._expiry.pop(route.key, None)
            self._changed(self.table.discard(route, now), now)
        self._peers.pop(router_id, None)
        return len(routes)

    def drop_gateway(self, gateway: str, now: float) -> int:
        """Withdraw every learned route through `gateway` (a peer whose link died)."""
        routes = [r for r in self.table.query(gateway=gateway) if r.router != self.id]
        for route in routes:
            self._expiry.pop(route.key, None)
            self._changed(self.table.discard(route, now), now)
        return len(routes)

    def statistics(self) -> RouterStatistics:
        damper = self.damper.statistics()
        local = sum(len(self._local_addresses(s)) for s in self._versions)
        return RouterStatistics(
            routes=len(self.table),
            local_routes=local,
            learned_routes=len(self._expiry),
            peers=len(self._peers),
            suppressed=damper.suppressed,
            suppressions=damper.suppressions,
            releases=damper.releases,
            **attrs.asdict(self._counters),
        )
