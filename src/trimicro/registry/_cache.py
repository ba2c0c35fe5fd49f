"""A caching lookup in front of a registry, kept fresh by a watch.

Lookups hit the registry once per service and TTL; watch events update the cache in between.
When the registry cannot be reached, stale entries are served rather than nothing (as
go-micro's cache does): an unreachable registry must not take healthy services down with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from ..nursery import Backoff, open_owned_nursery, supervise
from ._base import Registry, RegistryError
from ._model import ServiceRecord, WatchEvent

__all__ = ["ServiceCache", "open_service_cache"]

log = logging.getLogger("trimicro.registry")

DEFAULT_TTL = 60.0


@attrs.define(eq=False)
class _Entry:
    records: list[ServiceRecord]
    fetched_at: float


class ServiceCache:
    """`get_service` with a cache; other calls pass through."""

    def __init__(self, registry: Registry, *, ttl: float = DEFAULT_TTL) -> None:
        self.registry = registry
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}

    async def get_service(self, name: str) -> list[ServiceRecord]:
        entry = self._entries.get(name)
        now = trio.current_time()
        if entry is not None and entry.records and now - entry.fetched_at < self.ttl:
            return entry.records
        try:
            records = await self.registry.get_service(name)
        except RegistryError:
            if entry is not None:
                log.warning("registry unreachable; serving stale records for %s", name)
                return entry.records
            raise
        self._entries[name] = _Entry(records, now)
        return records

    def apply(self, event: WatchEvent) -> None:
        """Fold a watch event into the cache (only services already cached)."""
        entry = self._entries.get(event.service.name)
        if entry is None:
            return
        others = [r for r in entry.records if r.version != event.service.version]
        if event.action != "delete" and event.service.nodes:
            others.append(event.service)
        entry.records = others

    def invalidate(self) -> None:
        self._entries.clear()

    async def _watch(self) -> None:
        async with self.registry.watch() as watcher:
            async for event in watcher:
                self.apply(event)
        raise RegistryError("registry watch ended")

    async def _watch_or_invalidate(self) -> None:
        try:
            await self._watch()
        finally:
            # Events may have been missed: fall back to fetching afresh.
            self.invalidate()


@asynccontextmanager
async def open_service_cache(
    registry: Registry, *, ttl: float = DEFAULT_TTL
) -> AsyncIterator[ServiceCache]:
    """A `ServiceCache` whose watch task lives as long as the context."""
    cache = ServiceCache(registry, ttl=ttl)
    async with open_owned_nursery() as nursery:
        nursery.start_soon(
            lambda: supervise(cache._watch_or_invalidate, name="registry-watch", backoff=Backoff())
        )
        try:
            yield cache
        finally:
            nursery.cancel_scope.cancel()
