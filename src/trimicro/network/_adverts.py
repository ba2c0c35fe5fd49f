"""Route adverts between network nodes (sans-io): what we send, what we accept, the metric.

Sending: every route leaves with us as its gateway and link `network`; a local route costs 1,
a learned one what it costs us (the sum of the links it crossed). Each event carries the path
of node ids it came through. Receiving: a route whose path already holds our id is a loop and
is dropped (BGP's AS_PATH rule, which go-micro lacks); the rest cost what was advertised plus
our link to the sender.
"""

from __future__ import annotations

import attrs

from ..routing._advert import Advert
from ..routing._route import LOCAL_METRIC, MAX_METRIC, Route, RouteKey
from ..routing._table import EventType, RouteEvent
from ._messages import MAX_PATH, AdvertMessage

__all__ = ["NETWORK_LINK", "RoutePaths", "accept", "link_metric", "outgoing"]

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
    """The path each learned route came through, to extend when we relay it."""

    def __init__(self) -> None:
        self._paths: dict[RouteKey, tuple[str, ...]] = {}

    def get(self, route: Route) -> tuple[str, ...]:
        return self._paths.get(route.key, (route.router,))

    def set(self, route: Route, path: tuple[str, ...]) -> None:
        self._paths[route.key] = path

    def forget(self, route: Route) -> None:
        self._paths.pop(route.key, None)

    def __len__(self) -> int:
        return len(self._paths)


def outgoing(advert: Advert, self_id: str, paths: RoutePaths) -> AdvertMessage | None:
    """Our router's advert as a network message (None when nothing is left to send)."""
    events, sent_paths = [], []
    for event in advert.events:
        route = event.route
        if route.router == self_id:
            path: tuple[str, ...] = (self_id,)
            metric = LOCAL_METRIC
        else:
            path = (*paths.get(route), self_id)
            metric = route.metric
        if len(path) > MAX_PATH:
            continue
        relayed = attrs.evolve(route, gateway=self_id, link=NETWORK_LINK, metric=metric)
        events.append(attrs.evolve(event, route=relayed))
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
        if self_id in path or route.router == self_id:
            looped += 1
            continue
        metric = min(MAX_METRIC, route.metric + cost)
        learned = attrs.evolve(route, gateway=message.sender, link=NETWORK_LINK, metric=metric)
        if event.type is EventType.DELETE:
            paths.forget(learned)
        else:
            paths.set(learned, path)
        kept.append(attrs.evolve(event, route=learned))
    return attrs.evolve(message.advert, events=kept), looped
