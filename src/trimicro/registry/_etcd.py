"""`etcd://HOST:PORT[,HOST:PORT][?prefix=/NAME]`: the distributed registry, through etcd v3's
JSON gateway (httpx on trio).

Keys are readable: `<prefix>/services/<name>/<node-id>` holds the JSON of that node's version
record, so `etcdctl get --prefix /trimicro` shows every service. Each node lives under a lease
of its TTL; re-registering keeps the lease alive (and grants a new one if etcd lost it, so a
restart of etcd never leaves duplicates). Watches follow the prefix with etcd's streaming watch
and turn key changes into create/update/delete events per (name, version).

Several endpoints (`etcd://A:2379,B:2379,C:2379`, members of one cluster) are used one at a
time: requests and the watch go to the current endpoint, and a connection failure (or a 5xx)
moves them to the next one, round robin. The watch is checked every `WATCH_PROBE_INTERVAL`
seconds by a linearizable read to its own endpoint, so a member that hangs (SIGSTOP, a
partition, no leader) is left within about `WATCH_PROBE_INTERVAL + WATCH_PROBE_TIMEOUT`
seconds, not only one that refuses or resets. A new watch resumes at the last revision seen
plus one, so changes made while it was down are replayed, once; if that revision was compacted,
or the store behind the endpoint is another one (a different cluster id, or a revision behind
ours: etcd was wiped), the registry re-reads the whole prefix instead and diffs it against what
it knew. Reconnects back off as before (`Backoff(0.1, 5.0)`), from zero again once a watch has
been established.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import trio

from ..codec import unstructure
from ..nursery import Backoff, open_owned_nursery
from ._base import RegistryError
from ._model import Endpoint, Node, ServiceRecord, WatchAction, WatchEvent

__all__ = ["EtcdRegistry", "open_etcd_registry"]

log = logging.getLogger("trimicro.registry")

REQUEST_TIMEOUT = 5.0
WATCH_PROBE_INTERVAL = 2.0  # seconds between liveness reads on the watch's endpoint
WATCH_PROBE_TIMEOUT = 2.0
WATCH_BACKOFF = Backoff(0.1, 5.0)
WATCH_QUEUE_SIZE = 1024
DEFAULT_PREFIX = "/trimicro"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _range_end(prefix: str) -> str:
    """The key just past every key starting with `prefix` (etcd's prefix query)."""
    raw = prefix.encode()
    return base64.b64encode(raw[:-1] + bytes([raw[-1] + 1])).decode()


def _record_json(record: ServiceRecord, node: Node) -> str:
    data = {
        "name": record.name,
        "version": record.version,
        "metadata": record.metadata,
        "endpoints": [unstructure(e) for e in record.endpoints],
        "node": unstructure(node),
    }
    return json.dumps(data, sort_keys=True)


def _record_from(value: str) -> ServiceRecord:
    data = json.loads(value)
    node = Node(**data["node"])
    endpoints = [Endpoint(**e) for e in data.get("endpoints", [])]
    return ServiceRecord(data["name"], data["version"], data.get("metadata", {}), endpoints, [node])


def _merge(records: list[ServiceRecord]) -> list[ServiceRecord]:
    """One record per (name, version), with all its nodes."""
    merged: dict[tuple[str, str], ServiceRecord] = {}
    for record in records:
        key = (record.name, record.version)
        if key in merged:
            previous = merged[key]
            record = ServiceRecord(record.name, record.version, record.metadata,
                                   record.endpoints, [*previous.nodes, *record.nodes])  # fmt: skip
        merged[key] = record
    return list(merged.values())


class _EtcdWatcher:
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

    def __aiter__(self) -> _EtcdWatcher:
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


class _Resync(Exception):
    """The watch cannot resume at our revision (compacted, or another store): re-read."""


def _header(message: dict[str, Any]) -> tuple[str, int]:
    header = message.get("header", {})
    return str(header.get("cluster_id", "")), int(header.get("revision", 0))


class EtcdRegistry:
    """The `Registry` for `etcd://`."""

    def __init__(self, http: httpx.AsyncClient, endpoints: list[str], prefix: str) -> None:
        self._http = http
        self._endpoints = endpoints
        self._current = 0  # index of the endpoint requests and the watch go to first
        self._prefix = prefix.rstrip("/") or DEFAULT_PREFIX
        self._leases: dict[str, str] = {}  # node id → lease id
        self._watchers: set[_EtcdWatcher] = set()
        self._known: dict[tuple[str, str], ServiceRecord] = {}
        self._revision: int | None = None  # the store revision `_known` reflects
        self._cluster = ""  # the cluster id `_revision` belongs to
        self._established = False  # the current watch stream was created

    def _key(self, name: str, node_id: str = "") -> str:
        return f"{self._prefix}/services/{name}/{node_id}"

    def _failed(self, index: int) -> None:
        """Endpoint `index` failed: if it is the current one, move on to the next."""
        if self._current == index:
            self._current = (index + 1) % len(self._endpoints)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        start = self._current
        for step in range(len(self._endpoints)):
            index = (start + step) % len(self._endpoints)
            endpoint = self._endpoints[index]
            try:
                response = await self._http.post(f"http://{endpoint}{path}", json=body)
            except httpx.HTTPError as exc:
                last = f"{endpoint}: {type(exc).__name__} {exc}"
                self._failed(index)
                continue
            if response.status_code >= 500:  # unavailable, no leader, timed out: another member
                last = f"{endpoint}: {response.status_code} {response.text[:200]}"
                self._failed(index)
                continue
            if response.status_code != 200:
                raise RegistryError(
                    f"etcd {endpoint}{path}: {response.status_code} {response.text[:200]}"
                )
            self._current = index
            result: dict[str, Any] = response.json()
            return result
        raise RegistryError(f"etcd unreachable ({last})")

    # -- registration ----------------------------------------------------------------------

    async def _lease(self, node_id: str, ttl: float) -> str:
        lease = self._leases.get(node_id)
        if lease is not None:
            reply = await self._post("/v3/lease/keepalive", {"ID": lease})
            if int(reply.get("result", {}).get("TTL", 0)) > 0:
                return lease  # still alive: refreshed
        reply = await self._post("/v3/lease/grant", {"TTL": max(1, math.ceil(ttl))})
        lease = str(reply["ID"])
        self._leases[node_id] = lease
        return lease

    async def register(self, record: ServiceRecord, *, ttl: float | None = None) -> None:
        for node in record.nodes:
            body: dict[str, Any] = {"key": _b64(self._key(record.name, node.id)),
                                    "value": _b64(_record_json(record, node))}  # fmt: skip
            if ttl is not None:
                body["lease"] = await self._lease(node.id, ttl)
            await self._post("/v3/kv/put", body)

    async def deregister(self, record: ServiceRecord) -> None:
        for node in record.nodes:
            await self._post("/v3/kv/deleterange", {"key": _b64(self._key(record.name, node.id))})
            lease = self._leases.pop(node.id, None)
            if lease is not None:
                await self._post("/v3/lease/revoke", {"ID": lease})

    # -- lookups ---------------------------------------------------------------------------

    async def _range(self, prefix: str) -> tuple[list[ServiceRecord], str, int]:
        reply = await self._post(
            "/v3/kv/range", {"key": _b64(prefix), "range_end": _range_end(prefix)}
        )
        records = []
        for kv in reply.get("kvs", []):
            try:
                records.append(_record_from(_unb64(kv["value"])))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring malformed etcd entry %s: %s", _unb64(kv["key"]), exc)
        return _merge(records), *_header(reply)

    async def get_service(self, name: str) -> list[ServiceRecord]:
        return (await self._range(self._key(name)))[0]

    async def list_services(self) -> list[ServiceRecord]:
        return (await self._range(f"{self._prefix}/services/"))[0]

    # -- watching --------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(self, service: str | None = None) -> AsyncIterator[_EtcdWatcher]:
        watcher = _EtcdWatcher(service)
        self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)
            watcher.close()

    async def follow(self) -> None:
        """Stream etcd's watch on the prefix into watch events, failing over between the
        endpoints (round robin, with backoff) and resuming at the last revision seen."""
        attempt = 0
        while True:
            index = self._current
            self._established = False
            try:
                if self._revision is None:
                    await self._refresh()
                    index = self._current  # the endpoint that just answered
                await self._stream_watch(index)
            except _Resync as exc:
                log.info("etcd watch on %s: %s; re-reading", self._endpoints[index], exc)
                self._revision = None
            except (RegistryError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("etcd watch on %s interrupted: %s", self._endpoints[index], exc)
                self._failed(index)
            if self._established:
                attempt = 0
            await trio.sleep(WATCH_BACKOFF.delay(attempt))
            attempt += 1

    async def _refresh(self) -> None:
        """Re-read the prefix, emit the differences, remember the revision."""
        records, cluster, revision = await self._range(f"{self._prefix}/services/")
        self._diff(records)
        self._cluster, self._revision = cluster, revision

    async def _stream_watch(self, index: int) -> None:
        """Watch through endpoint `index` until the stream fails or its probe does."""
        endpoint = self._endpoints[index]
        probe_failure: list[str] = []
        error: Exception | None = None
        async with open_owned_nursery() as nursery:
            nursery.start_soon(self._probe, endpoint, probe_failure, nursery.cancel_scope)
            try:
                await self._read_watch(endpoint)
            except (_Resync, RegistryError, httpx.HTTPError, ValueError, KeyError,
                    TypeError) as exc:  # fmt: skip
                error = exc
            nursery.cancel_scope.cancel()
        if error is not None:
            raise error
        raise RegistryError(probe_failure[0] if probe_failure else "watch stream ended")

    async def _probe(self, endpoint: str, failure: list[str], scope: trio.CancelScope) -> None:
        """Every `WATCH_PROBE_INTERVAL`, a linearizable read of one key through `endpoint`: a
        stream to a hung member (stopped, partitioned, without a leader) never errors."""
        body = {"key": _b64(f"{self._prefix}/services/"), "limit": 1, "keys_only": True}
        while True:
            await trio.sleep(WATCH_PROBE_INTERVAL)
            try:
                response = await self._http.post(
                    f"http://{endpoint}/v3/kv/range", json=body, timeout=WATCH_PROBE_TIMEOUT
                )
            except httpx.HTTPError as exc:
                failure.append(f"liveness probe: {type(exc).__name__} {exc}")
                scope.cancel()
                return
            if response.status_code != 200:
                failure.append(f"liveness probe: {response.status_code} {response.text[:200]}")
                scope.cancel()
                return

    async def _read_watch(self, endpoint: str) -> None:
        assert self._revision is not None
        prefix = f"{self._prefix}/services/"
        request = {"create_request": {"key": _b64(prefix), "range_end": _range_end(prefix),
                                      "start_revision": self._revision + 1}}  # fmt: skip
        url = f"http://{endpoint}/v3/watch"
        timeout = httpx.Timeout(REQUEST_TIMEOUT, read=None)
        async with self._http.stream("POST", url, json=request, timeout=timeout) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                raise RegistryError(f"etcd watch {endpoint}: {response.status_code} {text[:200]}")
            async for line in response.aiter_lines():
                if line.strip():
                    await self._on_watch_message(json.loads(line))

    async def _on_watch_message(self, message: dict[str, Any]) -> None:
        if "error" in message:
            raise RegistryError(f"etcd watch: {message['error']}")
        result = message.get("result", {})
        if int(result.get("compact_revision", 0) or 0) > 0:
            raise _Resync(f"revision {self._revision} compacted")
        if result.get("canceled"):
            raise RegistryError(f"etcd watch canceled: {result.get('cancel_reason', '')}")
        if result.get("created"):
            cluster, revision = _header(result)
            if self._cluster and cluster and cluster != self._cluster:
                raise _Resync(f"another cluster ({cluster}, was {self._cluster})")
            if self._revision is not None and revision < self._revision:
                raise _Resync(f"store at revision {revision}, behind ours ({self._revision})")
            self._established = True
        events = result.get("events") or []
        revisions = [int(e.get("kv", {}).get("mod_revision", 0)) for e in events]
        if events and (0 in revisions or max(revisions) > (self._revision or 0)):
            await self._refresh()  # not already folded in by an earlier re-read

    def _diff(self, records: list[ServiceRecord]) -> None:
        current = {(r.name, r.version): r for r in records}
        for key, record in current.items():
            before = self._known.get(key)
            if before != record:
                self._emit("create" if before is None else "update", record)
        for key, record in self._known.items():
            if key not in current:
                self._emit("delete", ServiceRecord(record.name, record.version, record.metadata,
                                                   record.endpoints))  # fmt: skip
        self._known = current

    def _emit(self, action: WatchAction, record: ServiceRecord) -> None:
        for watcher in list(self._watchers):
            watcher.offer(WatchEvent(action, record))


def _parse(url: str) -> tuple[list[str], str]:
    parts = urlsplit(url)
    if parts.scheme != "etcd" or not parts.netloc:
        raise ValueError(f"registry URL {url!r}: expected etcd://HOST:PORT[,HOST:PORT]")
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - {"prefix"}
    if unknown:
        raise ValueError(f"registry URL {url!r}: unknown option(s) {sorted(unknown)}")
    prefix = query.get("prefix", DEFAULT_PREFIX)
    if not prefix.startswith("/"):
        raise ValueError(f"registry URL {url!r}: prefix must start with '/'")
    return parts.netloc.split(","), prefix


@asynccontextmanager
async def open_etcd_registry(url: str) -> AsyncIterator[EtcdRegistry]:
    """Open the etcd registry at `url`; its watch task lives as long as the context."""
    endpoints, prefix = _parse(url)
    async with (
        httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http,
        open_owned_nursery() as nursery,
    ):
        registry = EtcdRegistry(http, endpoints, prefix)
        nursery.start_soon(registry.follow)
        try:
            yield registry
        finally:
            nursery.cancel_scope.cancel()
