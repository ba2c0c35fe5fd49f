"""The interface every registry plugin implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ._model import ServiceRecord, WatchEvent

__all__ = ["Registry", "RegistryError", "Watcher"]


class RegistryError(Exception):
    """The registry could not be reached or refused an operation."""


class Watcher(Protocol):
    """Async iterator of `WatchEvent`s; ends when its context exits or the registry closes."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...


class Registry(Protocol):
    """Service discovery. Obtained from `open_registry(url)`, which owns its background tasks.

    - `register(record, ttl=)` adds `record.nodes` to (name, version); the nodes expire `ttl`
      seconds later unless registered again (re-registering refreshes them).
    - `deregister(record)` removes `record.nodes`; a version with no nodes left is removed.
    - `get_service(name)` returns one record per version (empty list when unknown).
    - `list_services()` returns every record (nodes may be omitted by some plugins).
    - `watch(service=None)` yields a `Watcher` of changes from now on.
    """

    async def register(self, record: ServiceRecord, *, ttl: float | None = None) -> None: ...

    async def deregister(self, record: ServiceRecord) -> None: ...

    async def get_service(self, name: str) -> list[ServiceRecord]: ...

    async def list_services(self) -> list[ServiceRecord]: ...

    def watch(self, service: str | None = None) -> AbstractAsyncContextManager[Watcher]: ...
