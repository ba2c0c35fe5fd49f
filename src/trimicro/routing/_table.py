"""The routing table (sans-io): routes by service, change events, queries, bounded watchers.

Every write takes `now` (the event timestamp) and returns the event it caused, or None when
nothing changed; the same event goes to every watcher whose service filter matches. Writes
follow go-micro's table:

- `create` adds a route and emits CREATE; an existing identity raises `RouteExists`.
- `update` inserts or overwrites and emits UPDATE, but only when something changed (go-micro
  emits nothing for any overwrite, so watchers never learn of a new metric).
- `delete` removes and emits DELETE (with the route as it was); unknown raises `RouteNotFound`.
  `discard` is the same without raising.

Watchers hold at most `size` events. One that falls further behind drops its queue and
reports `WatchOverflowed` once, as its next event: the consumer re-reads the table (`query`)
and carries on, and the events after the marker are the changes made since.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator

import attrs

from ._route import Route, RouteKey
from ._strategy import best_routes

__all__ = [
    "ANY",
    "WATCH_QUEUE_SIZE",
    "EventType",
    "RouteEvent",
    "RouteExists",
    "RouteNotFound",
    "RoutingError",
    "Table",
    "TableWatcher",
    "WatchOverflowed",
]

#: Matches any value in a query (go-micro's wildcard).
ANY = "*"
#: Events a watcher may fall behind by (go-micro: 10). Overflow costs the consumer a re-read
#: of the table, so the queue is sized to absorb a registry storm between two reads.
WATCH_QUEUE_SIZE = 1024


class RoutingError(Exception):
    """Base of the routing layer's errors."""


class RouteExists(RoutingError):
    """`create` of a route whose identity is already in the table."""


class RouteNotFound(RoutingError):
    """`delete` of a route that is not in the table."""


class EventType(enum.IntEnum):
    """go-micro's values (`router.EventType`)."""

    CREATE = 0
    DELETE = 1
    UPDATE = 2


@attrs.frozen
class RouteEvent:
    """A change to the table: the route after it (for DELETE, the route removed)."""

    type: EventType
    route: Route
    timestamp: float


@attrs.frozen
class WatchOverflowed:
    """The watcher fell more than its size behind and `dropped` events were discarded."""

    dropped: int


class TableWatcher:
    """Changes to the table, optionally for one service, in order (see the module docstring)."""

    def __init__(self, owner: set[TableWatcher], service: str | None, size: int) -> None:
        if size < 1:
            raise ValueError(f"watcher size must be at least 1, not {size}")
        self.service = service
        self.size = size
        self._owner = owner
        self._queue: deque[RouteEvent] = deque()
        self._dropped = 0

    def next_event(self) -> RouteEvent | WatchOverflowed | None:
        """The next change, the overflow marker, or None when there is nothing new."""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return WatchOverflowed(dropped)
        return self._queue.popleft() if self._queue else None

    @property
    def closed(self) -> bool:
        return self not in self._owner

    def close(self) -> None:
        self._owner.discard(self)
        self._queue.clear()

    def _offer(self, event: RouteEvent) -> None:
        if self.service is not None and event.route.service != self.service:
            return
        if self._dropped:  # until the marker is read, the re-read will cover this change too
            self._dropped += 1
        elif len(self._queue) >= self.size:
            self._dropped = len(self._queue) + 1
            self._queue.clear()
        else:
            self._queue.append(event)


def _by_metric(route: Route) -> tuple[int, RouteKey]:
    return (route.metric, route.key)


class Table:
    """Routes keyed by service, then by identity (`Route.key`)."""

    def __init__(self) -> None:
        self._services: dict[str, dict[RouteKey, Route]] = {}
        self._watchers: set[TableWatcher] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    # --- writes ------------------------------------------------------------------------------

    def create(self, route: Route, now: float) -> RouteEvent:
        bucket = self._services.setdefault(route.service, {})
        if route.key in bucket:
            raise RouteExists(f"route exists: {route}")
        bucket[route.key] = route
        self._count += 1
        return self._emit(EventType.CREATE, route, now)

    def update(self, route: Route, now: float) -> RouteEvent | None:
        bucket = self._services.setdefault(route.service, {})
        held = bucket.get(route.key)
        if held == route:
            return None
        bucket[route.key] = route
        if held is None:
            self._count += 1
        return self._emit(EventType.UPDATE, route, now)

    def delete(self, route: Route, now: float) -> RouteEvent:
        event = self.discard(route, now)
        if event is None:
            raise RouteNotFound(f"route not found: {route}")
        return event

    def discard(self, route: Route, now: float) -> RouteEvent | None:
        bucket = self._services.get(route.service)
        held = None if bucket is None else bucket.pop(route.key, None)
        if held is None:
            return None
        if not bucket:
            del self._services[route.service]
        self._count -= 1
        return self._emit(EventType.DELETE, held, now)

    def _emit(self, type_: EventType, route: Route, now: float) -> RouteEvent:
        event = RouteEvent(type_, route, now)
        for watcher in self._watchers:
            watcher._offer(event)
        return event

    # --- reads -------------------------------------------------------------------------------

    def get(self, key: RouteKey) -> Route | None:
        bucket = self._services.get(key[0])
        return None if bucket is None else bucket.get(key)

    def routes(self) -> Iterator[Route]:
        for bucket in self._services.values():
            yield from bucket.values()

    def services(self) -> list[str]:
        return sorted(self._services)

    def query(
        self,
        service: str = ANY,
        *,
        address: str = ANY,
        gateway: str = ANY,
        network: str = ANY,
        router: str = ANY,
        link: str = ANY,
    ) -> list[Route]:
        """Routes matching every field given (`ANY` matches anything), sorted by metric."""
        if service == ANY:
            found = list(self.routes())
        else:
            found = list(self._services.get(service, {}).values())
        wanted = [(i, v) for i, v in enumerate((address, gateway, network, router, link), 1)]
        wanted = [(i, v) for i, v in wanted if v != ANY]
        if wanted:
            found = [r for r in found if all(r.key[i] == v for i, v in wanted)]
        found.sort(key=_by_metric)
        return found

    def best(self, service: str = ANY, *, network: str = ANY, own_id: str = "") -> list[Route]:
        """Per (service, network) the cheapest route (`own_id`'s wins a tie), by metric."""
        return best_routes(self.query(service, network=network), own_id)

    def watch(self, service: str | None = None, *, size: int = WATCH_QUEUE_SIZE) -> TableWatcher:
        watcher = TableWatcher(self._watchers, service, size)
        self._watchers.add(watcher)
        return watcher
