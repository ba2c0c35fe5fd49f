"""Records an app registers through `POST /registry`: validated, then kept alive.

The body is the registry record shape (`trimicro service NAME --output json` prints the
same): `{"name", "version"?, "metadata"?, "endpoints"?, "nodes": [{"id", "address",
"metadata"?}]}`. Errors are 400s naming the field (`record.nodes[0].address: required field
missing`). A posted record is registered with a TTL and refreshed until `DELETE /registry`
names it again or the sidecar stops, which deregisters it: an app that forgets to deregister
leaves no ghost behind, and one whose sidecar dies disappears when the TTL runs out.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import trio

from ..codec import CodecError, json_loads, structure
from ..registry import Registry, RegistryError, ServiceRecord, keep_registered
from ..rpc import errors

__all__ = ["SIDECAR_ID", "Registrations", "parse_record"]

log = logging.getLogger("trimicro.sidecar")

#: The `id` of errors the sidecar itself answers with.
SIDECAR_ID = "trimicro.sidecar"

#: Bound on one deregistration when the sidecar stops (a dead registry must not hold it).
DEREGISTER_TIMEOUT = 5.0


def _bad(detail: str) -> errors.Error:
    return errors.bad_request(detail, id=SIDECAR_ID)


def parse_record(body: bytes) -> ServiceRecord:
    """A registry record from a JSON body, or a 400 naming the field that is wrong."""
    try:
        data: Any = json_loads(body)
    except CodecError as exc:
        raise _bad(f"body: {exc}") from None
    if not isinstance(data, dict):
        raise _bad('body must be a JSON object {"name", "nodes": [...], ...}')
    try:
        record: ServiceRecord = structure(data, ServiceRecord, for_json=True)
    except CodecError as exc:
        raise _bad(str(exc).replace("request", "record", 1)) from None
    _check(record)
    return record


def _check(record: ServiceRecord) -> None:
    if not record.name.strip() or any(c.isspace() for c in record.name):
        raise _bad("record.name must be a non-empty name without spaces")
    if not record.version:
        raise _bad("record.version must not be empty")
    if not record.nodes:
        raise _bad("record.nodes must list at least one node")
    for i, node in enumerate(record.nodes):
        if not node.id:
            raise _bad(f"record.nodes[{i}].id must not be empty")
        if not node.address:
            raise _bad(f"record.nodes[{i}].address must not be empty")


def _key(record: ServiceRecord) -> tuple[str, str, frozenset[str]]:
    return record.name, record.version, frozenset(node.id for node in record.nodes)


@attrs.define(eq=False)
class Registrations:
    """The records apps posted, each refreshed by its own task in `nursery`."""

    registry: Registry
    nursery: trio.Nursery
    ttl: float = 60.0
    interval: float = 30.0
    _scopes: dict[tuple[str, str, frozenset[str]], trio.CancelScope] = attrs.field(factory=dict)
    _records: dict[tuple[str, str, frozenset[str]], ServiceRecord] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self._records)

    async def add(self, record: ServiceRecord) -> None:
        """Register `record` now (503 when the registry refuses), then keep it registered.
        Posting the same nodes again replaces the record (new metadata or endpoints)."""
        key = _key(record)
        self._stop(key)
        scope = trio.CancelScope()

        async def keep(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await keep_registered(
                    self.registry, record, ttl=self.ttl, interval=self.interval,
                    task_status=task_status,
                )  # fmt: skip

        try:
            await self.nursery.start(keep)
        except RegistryError as exc:
            raise errors.unavailable(f"registry: {exc}", id=SIDECAR_ID) from None
        self._scopes[key], self._records[key] = scope, record

    async def remove(self, record: ServiceRecord) -> None:
        """Stop refreshing `record` (if it was posted here) and deregister its nodes."""
        self._stop(_key(record))
        try:
            await self.registry.deregister(record)
        except RegistryError as exc:
            raise errors.unavailable(f"registry: {exc}", id=SIDECAR_ID) from None

    def _stop(self, key: tuple[str, str, frozenset[str]]) -> None:
        scope = self._scopes.pop(key, None)
        self._records.pop(key, None)
        if scope is not None:
            scope.cancel()

    async def clear(self) -> None:
        """Deregister every posted record (the sidecar is stopping)."""
        records = list(self._records.values())
        for key in list(self._scopes):
            self._stop(key)
        for record in records:
            with trio.move_on_after(DEREGISTER_TIMEOUT):
                try:
                    await self.registry.deregister(record)
                except RegistryError as exc:
                    log.warning("could not deregister %s: %s", record.name, exc)
