"""Adverts: what routers tell each other, and the limits on what we accept (sans-io).

An advert carries table events from one router:

- ANNOUNCE: the whole table as CREATE events, once, when the router starts;
- UPDATE (go-micro's RouteUpdate): flap-damped changes every 10 s, and the whole table as
  UPDATE events every 2 minutes and in answer to a solicitation;
- SOLICITATION: "send me your tables"; it carries the sender's own table, and every router
  that receives it answers with a whole-table UPDATE.

`timestamp` and event timestamps are on the sender's clock; receivers only compare them with
each other. `ttl` is enforced: a learned route that no advert mentions again within `ttl`
seconds of its last mention is withdrawn. Since the whole table comes every 2 minutes, the
default TTL (5 minutes) survives one lost table advert; go-micro's 2 minutes would expire
routes on every late one (it carried the TTL but never enforced it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence

import attrs

from ._route import RouteKey
from ._table import RouteEvent

__all__ = [
    "ADVERTISE_EVENTS_INTERVAL",
    "ADVERTISE_TABLE_INTERVAL",
    "DEFAULT_ADVERT_TTL",
    "DEFAULT_LIMITS",
    "Advert",
    "AdvertLimits",
    "AdvertType",
    "PeerState",
    "chunked",
]

#: go-micro v1.18's AdvertiseEventsTick and AdvertiseTableTick.
ADVERTISE_EVENTS_INTERVAL = 10.0
ADVERTISE_TABLE_INTERVAL = 120.0
#: How long a learned route lives without being advertised again (see the module docstring).
DEFAULT_ADVERT_TTL = 300.0


class AdvertType(enum.IntEnum):
    """go-micro's values (`router.AdvertType`)."""

    ANNOUNCE = 0
    UPDATE = 1
    SOLICITATION = 2


def _events(value: Iterable[RouteEvent]) -> tuple[RouteEvent, ...]:
    return tuple(value)


@attrs.frozen
class Advert:
    """Events from router `id`, valid for `ttl` seconds."""

    id: str
    type: AdvertType
    timestamp: float
    ttl: float = DEFAULT_ADVERT_TTL
    events: tuple[RouteEvent, ...] = attrs.field(default=(), converter=_events)


@attrs.frozen
class AdvertLimits:
    """What one router may cost us. Every bound is named here."""

    #: Events in one advert: larger batches are sent as several adverts, larger ones
    #: received are refused whole. 4096 events are about 0.5 MB of CBOR, well inside a frame.
    max_events: int = 4096
    #: Adverts a peer may send in a burst, refilled at this many per `peer_interval`: enough
    #: for a 100k-route table (25 adverts) plus the 10 s updates, nowhere near a flood.
    peer_burst: int = 32
    peer_interval: float = ADVERTISE_EVENTS_INTERVAL
    #: Routes one peer may have us hold (including recent withdrawals); more are refused.
    max_routes_per_peer: int = 10_000
    #: Peers tracked at once, and routes learned from all of them together.
    max_peers: int = 1024
    max_learned: int = 100_000
    #: A peer's TTL is clamped to this, so nobody pins routes in our table for long.
    max_ttl: float = 600.0
    #: Whole-table answers to solicitations go out at most this often (they are coalesced).
    answer_spacing: float = 1.0
    #: A route learned for the first time, or withdrawn, is relayed after this batching
    #: delay rather than at the next events tick, so news crosses the network at link speed
    #: instead of one hop per tick. Other changes wait for the tick (and flap damping).
    fresh_delay: float = 0.5


DEFAULT_LIMITS = AdvertLimits()


@attrs.define(eq=False)
class PeerState:
    """What we know of one advertising router: its advert budget and the last event time we
    applied per route (with when that memory expires), which makes processing idempotent."""

    tokens: float
    at: float
    seen: dict[RouteKey, tuple[float, float]] = attrs.field(factory=dict)  # → (ts, expires)

    def allow(self, now: float, limits: AdvertLimits) -> bool:
        """Token bucket: one token per advert, `peer_burst` per `peer_interval`."""
        rate = limits.peer_burst / limits.peer_interval
        self.tokens = min(limits.peer_burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def has_room(self, now: float, limit: int) -> bool:
        if len(self.seen) < limit:
            return True
        self.prune(now)
        return len(self.seen) < limit

    def prune(self, now: float) -> None:
        for key in [k for k, (_, expires) in self.seen.items() if expires <= now]:
            del self.seen[key]


def chunked(events: Sequence[RouteEvent], size: int) -> Iterator[tuple[RouteEvent, ...]]:
    for start in range(0, len(events), size):
        yield tuple(events[start : start + size])
