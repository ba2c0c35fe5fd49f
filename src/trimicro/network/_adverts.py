"""Route adverts between network nodes (sans-io): what we send, what we accept, the metric.

Sending: every route leaves with us as its gateway and link `network`; a local route costs 1,
a learned one what it costs us (the sum of the links it crossed). Each event carries the path
of node ids it came through. Receiving: a route whose path already holds our id is a loop and
is dropped (BGP's AS_PATH rule, which go-micro lacks) and withdraws what the sender told us
before about that route; the rest cost what was advertised plus our link to the sender.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

from ..routing._advert import Advert
from ..routing._route import LOCAL_METRIC, MAX_METRIC, Route, RouteKey
from ..routing._table import EventType, RouteEvent
from ._messages import MAX_PATH, AdvertMessage

__all__ = ["NETWORK_LINK", "RoutePaths", "Stamps", "accept", "link_metric", "outgoing"]

NETWORK_LINK = "network"
#: A link whose RTT is not measured yet costs as go-micro's: 1e10 ns.
UNMEASURED_RTT = 10.0
#: Hop factor of a direct peer in go-micro's formula (1 self, 10 peer, 100 peer of a peer).
PEER_HOPS = 10


def link_metric(rtt: float | None, queue_delay: float) -> int:
    """go-micro's `delay * length * hops / 1e7` for a direct peer: RTT in ns (1e10 when not
    measured), delay the queue delay in ms (at least 1). A 1 ms link costs 1."""
    length_ns = (UNMEASURED_RTT if rtt is None else rtt) * 1e9
    delay = max(1, round(queue_delay * 1e3))
    return max(1, min(MAX_METRIC, round(delay * length_ns * PEER_HOPS / 1e7)))


class RoutePaths:
    """The path each learned route came through, to extend when we relay it.

    Kept by event time, as the router keeps routes: an event older than what we have (a
    stale or duplicate advert, which the router ignores too) changes nothing here either,
    so a route's path is always the path of the version in the table.
    """

    def __init__(self) -> None:
        self._paths: dict[RouteKey, tuple[float, tuple[str, ...]]] = {}

    def get(self, route: Route) -> tuple[str, ...] | None:
        entry = self._paths.get(route.key)
        return None if entry is None else entry[1]

    def learn(self, route: Route, timestamp: float, path: tuple[str, ...]) -> None:
        entry = self._paths.get(route.key)
        if entry is None or timestamp > entry[0]:
            self._paths[route.key] = (timestamp, path)

    def retain(self, keys: set[RouteKey]) -> None:
        """Forget routes no longer in the table."""
        for key in [k for k in self._paths if k not in keys]:
            del self._paths[key]

    def __len__(self) -> int:
        return len(self._paths)


class Stamps:
    """Strictly increasing event times for what we send: all our routes to one instance are
    one route to our peers, and they apply events per route in time order, dropping any not
    newer than the last. Two changes at the same instant (common under a virtual clock)
    must not look like a duplicate."""

    def __init__(self) -> None:
        self._last = float("-inf")

    def next(self, at: float) -> float:
        self._last = max(at, math.nextafter(self._last, math.inf))
        return self._last


def outgoing(
    advert: Advert,
    self_id: str,
    paths: RoutePaths,
    still_routed: Callable[[Route], bool] = lambda route: False,
    stamps: Stamps | None = None,
) -> AdvertMessage | None:
    """Our router's advert as a network message (None when nothing is left to send).

    Every route we relay leaves with us as its gateway, so all our routes to one instance of
    a service are one route to our peers: the withdrawal of one of them is not sent while
    `still_routed` says we have another, and events are re-stamped in the order we send
    them (`stamps`).
    """
    events, sent_paths = [], []
    for event in advert.events:
        route = event.route
        if event.type is EventType.DELETE and route.router != self_id and still_routed(route):
            continue
        if route.router == self_id:
            path: tuple[str, ...] = (self_id,)
            metric = LOCAL_METRIC
        else:
            known = paths.get(route)
            if known is None and event.type is not EventType.DELETE:
                continue  # a route we cannot vouch for is not relayed (it could loop)
            path = (*(known or (route.router,)), self_id)
            metric = route.metric
        if len(path) > MAX_PATH:
            continue
        relayed = attrs.evolve(route, gateway=self_id, link=NETWORK_LINK, metric=metric)
        stamp = event.timestamp if stamps is None else stamps.next(event.timestamp)
        events.append(attrs.evolve(event, route=relayed, timestamp=stamp))
        sent_paths.append(path)
    if not events and advert.events:
        return None
    return AdvertMessage(self_id, attrs.evolve(advert, events=events), tuple(sent_paths))


def accept(
    message: AdvertMessage, self_id: str, cost: int, paths: RoutePaths
) -> tuple[Advert, int]:
    """The advert to feed our router, and how many looping events were dropped."""
    kept: list[RouteEvent] = []
    looped = 0
    for event, path in zip(message.advert.events, message.paths, strict=True):
        route = event.route
        if route.router == self_id:
            looped += 1
            continue
        metric = min(MAX_METRIC, route.metric + cost)
        learned = attrs.evolve(route, gateway=message.sender, link=NETWORK_LINK, metric=metric)
        if self_id in path:
            # The sender now reaches the service through us: whatever it told us before
            # about this route is void (BGP's implicit withdrawal), or it would live on here.
            looped += 1
            event = RouteEvent(EventType.DELETE, learned, event.timestamp)
        paths.learn(learned, event.timestamp, path)
        kept.append(attrs.evolve(event, route=learned))
    return attrs.evolve(message.advert, events=kept), looped
