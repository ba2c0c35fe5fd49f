"""`memory://NAME`: an in-process registry. Registries opened with the same NAME share state.

Expiry is exact on trio's clock: a node registered with `ttl` is gone from lookups at
`registered_at + ttl`, and the expiry task wakes at that instant to tell watchers.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import attrs
import trio

from ..nursery import open_owned_nursery
from ._base import RegistryError
from ._model import Node, ServiceRecord, WatchAction, WatchEvent

__all__ = ["MemoryRegistry", "open_memory_registry"]

#: Events a watcher may fall behind by before it is closed with an error.
WATCH_QUEUE_SIZE = 1024


@attrs.define(eq=False)
class _Version:
    record: ServiceRecord  # name, version, metadata, endpoints (nodes kept below)
    nodes: dict[str, tuple[Node, float]] = attrs.field(factory=dict)  # id → (node, expires_at)

    def snapshot(self, now: float) -> ServiceRecord:
        live = tuple(node for node, expires in self.nodes.values() if expires > now)
        return attrs.evolve(self.record, nodes=live)


class _MemoryWatcher:
    def __init__(self, service: str | None) -> None:
        self.service = service
        self._send, self._receive = trio.open_memory_channel[WatchEvent](WATCH_QUEUE_SIZE)
        self.overflowed = False

    def offer(self, event: WatchEvent) -> None:
        if self.service is not None and event.service.name != self.service:
            return
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.overflowed = True
            self._send.close()
        except trio.ClosedResourceError:
            pass

    def close(self) -> None:
        self._send.close()

    def __aiter__(self) -> _MemoryWatcher:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            if self.overflowed:
                raise RegistryError(
                    f"watcher fell behind by more than {WATCH_QUEUE_SIZE} events"
                ) from None
            raise StopAsyncIteration from None


class _Store:
    """The shared state behind one NAME."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], _Version] = {}
        self.watchers: set[_MemoryWatcher] = set()
        self.changed = trio.Event()  # wakes expiry tasks when a registration changes
        # (expires_at, name, version, node id); entries go stale when a node is refreshed or
        # removed, and are skipped when they surface: no scan of every service per change.
        self.deadlines: list[tuple[float, str, str, str]] = []

    def notify(self, action: WatchAction, record: ServiceRecord) -> None:
        event = WatchEvent(action, record)
        for watcher in list(self.watchers):
            watcher.offer(event)

    def poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def schedule(self, expires: float, key: tuple[str, str], node_id: str) -> None:
        if expires != math.inf:
            heapq.heappush(self.deadlines, (expires, key[0], key[1], node_id))

    def _current(self, entry: tuple[float, str, str, str]) -> bool:
        expires, name, version_name, node_id = entry
        version = self.versions.get((name, version_name))
        return version is not None and version.nodes.get(node_id, (None, None))[1] == expires

    def next_expiry(self) -> float:
        while self.deadlines and not self._current(self.deadlines[0]):
            heapq.heappop(self.deadlines)
        return self.deadlines[0][0] if self.deadlines else math.inf

    def expire(self, now: float) -> None:
        dead: dict[tuple[str, str], list[str]] = {}
        while self.deadlines and self.deadlines[0][0] <= now:
            entry = heapq.heappop(self.deadlines)
            if self._current(entry):
                dead.setdefault((entry[1], entry[2]), []).append(entry[3])
        for key, node_ids in dead.items():
            version = self.versions[key]
            before = version.snapshot(-math.inf)
            for nid in node_ids:
                del version.nodes[nid]
            if version.nodes:
                self.notify("update", version.snapshot(now))
            else:
                del self.versions[key]
                self.notify("delete", attrs.evolve(before, nodes=()))


_stores: dict[str, _Store] = {}


class MemoryRegistry:
    """The `Registry` for `memory://NAME`."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    async def register(self, record: ServiceRecord, *, ttl: float | None = None) -> None:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        expires = math.inf if ttl is None else now + ttl
        key = (record.name, record.version)
        version = self._store.versions.get(key)
        created = version is None
        if version is None:
            version = self._store.versions[key] = _Version(attrs.evolve(record, nodes=()))
        else:
            version.record = attrs.evolve(record, nodes=())
        for node in record.nodes:
            version.nodes[node.id] = (node, expires)
            self._store.schedule(expires, key, node.id)
        self._store.notify("create" if created else "update", version.snapshot(now))
        self._store.poke()

    async def deregister(self, record: ServiceRecord) -> None:
        await trio.lowlevel.checkpoint()
        key = (record.name, record.version)
        version = self._store.versions.get(key)
        if version is None:
            return
        for node in record.nodes:
            version.nodes.pop(node.id, None)
        if version.nodes:
            self._store.notify("update", version.snapshot(trio.current_time()))
        else:
            del self._store.versions[key]
            self._store.notify("delete", version.record)
        self._store.poke()

    def _live(self) -> Iterator[ServiceRecord]:
        now = trio.current_time()
        for version in self._store.versions.values():
            snapshot = version.snapshot(now)
            if snapshot.nodes:
                yield snapshot

    async def get_service(self, name: str) -> list[ServiceRecord]:
        await trio.lowlevel.checkpoint()
        return [record for record in self._live() if record.name == name]

    async def list_services(self) -> list[ServiceRecord]:
        await trio.lowlevel.checkpoint()
        return list(self._live())

    @asynccontextmanager
    async def watch(self, service: str | None = None) -> AsyncIterator[_MemoryWatcher]:
        watcher = _MemoryWatcher(service)
        self._store.watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._store.watchers.discard(watcher)
            watcher.close()


async def _expire_forever(store: _Store) -> None:
    while True:
        changed = store.changed
        with trio.move_on_at(store.next_expiry()):
            await changed.wait()
        store.expire(trio.current_time())


@asynccontextmanager
async def open_memory_registry(url: str = "memory://default") -> AsyncIterator[MemoryRegistry]:
    """Open the in-process registry named by `url`'s host part (`memory://NAME`)."""
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise ValueError(f"registry URL {url!r}: expected memory://NAME")
    store = _stores.setdefault(parts.netloc or "default", _Store())
    async with open_owned_nursery() as nursery:
        nursery.start_soon(_expire_forever, store)
        try:
            yield MemoryRegistry(store)
        finally:
            nursery.cancel_scope.cancel()
