"""The `mdns://` registry's state machine (sans-io): registrations, the cache, watch events.

Fed datagrams and `now`, it returns datagrams and events, in the project's driving shape:

    core.receive_datagram(data, source, now)    # a datagram from port 5353
    core.register(record, ttl, now) / deregister / query / close
    core.datagrams_to_send()                    # → [Datagram(data, destination)]
    core.next_event()                           # → WatchEvent | None
    core.get_timer(); core.handle_timer(now)    # expiry and re-announcement

What a lookup sees is one merged view of this process's registrations and the instances heard
on the wire (ours win for the same instance name). Every change to that view becomes a
create/update/delete `WatchEvent` for its (name, version), whether it came from a local call,
an announcement, a goodbye or an expiry; identical re-announcements change nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import attrs
import dns.name
import dns.rdatatype

from ._mdns_wire import (
    MDNS_PORT,
    SERVICE_ENUMERATION,
    SERVICE_TYPE,
    Heard,
    Instance,
    Query,
    WireError,
    build_enumeration,
    build_query,
    build_response,
    instance_label,
    instance_name,
    is_response,
    is_standard,
    make_instance,
    parse_datagram,
    read_announcements,
    read_query,
    schemas_dropped,
    subtype_name,
    validate_domain,
)
from ._model import ServiceRecord, WatchEvent

__all__ = ["Datagram", "MdnsCore", "MdnsStatistics"]

log = logging.getLogger("trimicro.registry.mdns")

#: Instances heard from other processes that we keep at most; past it, new ones are ignored.
MAX_CACHED = 4096
#: Events buffered between two drains by the driver (it drains after every call).
EVENT_BUFFER = 4096
#: TTL put on the wire for a registration without one, and the most any announcement says
#: (RFC 6762 §10: 120 s for records naming hosts); re-announced at half of it.
MAX_DNS_TTL = 120
#: A new or changed registration is announced twice, this far apart (RFC 6762 §8.3).
ANNOUNCE_REPEAT = 1.0
#: The same query bytes heard again within this window are answered once: each query
#: reaches us once per interface it was sent on (loopback and LAN). Our own queries carry a
#: per-registry id, so two registries' queries are never mistaken for copies of one.
QUERY_DEDUPE_WINDOW = 0.25
MAX_RECENT_QUERIES = 256

_Key = tuple[str, str]  # (service name, version)
_PTR_QUESTIONS = {dns.rdatatype.PTR, dns.rdatatype.ANY}
_INSTANCE_QUESTIONS = {dns.rdatatype.SRV, dns.rdatatype.TXT, dns.rdatatype.ANY}
_HOST_QUESTIONS = {dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.ANY}


@attrs.frozen
class Datagram:
    """`destination` None: multicast to 224.0.0.251:5353 on every interface."""

    data: bytes
    destination: tuple[str, int] | None = None


@attrs.define
class MdnsStatistics:
    local: int
    cached: int
    malformed: int
    cache_full_drops: int


@attrs.define(eq=False)
class _Local:
    instance: Instance
    expires: float  # inf when registered without a TTL
    next_announce: float


@attrs.define(eq=False)
class _Cached:
    record: ServiceRecord
    ttl: int
    expires: float


class MdnsCore:
    """One site's (`domain`'s) registrations and cache."""

    def __init__(
        self, domain: str = "trimicro", *, query_id: int = 0, max_cached: int = MAX_CACHED
    ) -> None:
        """`query_id`: put in our queries; the driver draws it at random (1..65535)."""
        self.domain = validate_domain(domain)
        self.query_id = query_id
        self.max_cached = max_cached
        self._subtype = subtype_name(domain)
        self._local: dict[dns.name.Name, _Local] = {}
        self._cached: dict[dns.name.Name, _Cached] = {}
        self._index: dict[_Key, set[dns.name.Name]] = {}
        self._shown: dict[_Key, ServiceRecord] = {}
        self._events: deque[WatchEvent] = deque(maxlen=EVENT_BUFFER)
        self._outgoing: list[Datagram] = []
        self._recent_queries: dict[bytes, float] = {}
        self._malformed = 0
        self._cache_full_drops = 0

    # --- local registrations -----------------------------------------------------------------

    def register(self, record: ServiceRecord, ttl: float | None, now: float) -> None:
        """Publish every node of `record`; the nodes expire `ttl` seconds from `now`."""
        if ttl is not None and not 0 < ttl < math.inf:
            raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
        instances = [self._instance_of(record, i) for i in range(len(record.nodes))]
        expires = math.inf if ttl is None else now + ttl
        for instance in instances:
            previous = self._local.get(instance.name)
            entry = _Local(instance, expires, now)
            self._set_local(instance.name, entry)
            changed = previous is None or previous.instance != instance
            self._announce(entry, now, repeat=changed)

    def _instance_of(self, record: ServiceRecord, index: int) -> Instance:
        node: Any = (record.nodes[index],)  # Any: see _mdns_wire._load_blob
        single = attrs.evolve(record, nodes=node)
        instance = make_instance(self.domain, single)
        if schemas_dropped(instance, single):
            log.warning("%s: endpoint schemas left out of mDNS: too large", record.name)
        return instance

    def deregister(self, record: ServiceRecord, now: float) -> None:
        """Withdraw `record`'s nodes with goodbye packets (TTL 0) so peers drop them now."""
        for node in record.nodes:
            name = instance_name(instance_label(self.domain, record.name, node.id))
            entry = self._local.get(name)
            if entry is not None and entry.instance.record.version == record.version:
                self._set_local(name, None)
                self._outgoing.append(Datagram(build_response(entry.instance, 0)))

    def close(self, now: float) -> None:
        """Goodbyes for everything registered here; the registry is going away."""
        for name, entry in list(self._local.items()):
            self._set_local(name, None)
            self._outgoing.append(Datagram(build_response(entry.instance, 0)))

    def query(self, now: float) -> None:
        """Ask the site who is there, listing what we already know (RFC 6762 §7.1)."""
        self._expire(now)
        known = self._known_answers(now)
        self._outgoing.append(Datagram(build_query(self.domain, known, query_id=self.query_id)))

    def _known_answers(self, now: float) -> Iterator[tuple[dns.name.Name, int]]:
        # Our own registrations too: our responder hears our query and need not answer it.
        for name, entry in self._local.items():
            yield name, self._dns_ttl(entry, now)
        for name, cached in self._cached.items():
            remaining = int(cached.expires - now)
            if remaining * 2 > cached.ttl:  # §7.1: only answers with over half their TTL left
                yield name, remaining

    # --- the view ----------------------------------------------------------------------------

    def services(self, now: float, name: str | None = None) -> list[ServiceRecord]:
        """The merged view: one record per (name, version) with live nodes."""
        self._expire(now)
        return [r for r in self._shown.values() if name is None or r.name == name]

    def next_event(self) -> WatchEvent | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._outgoing = self._outgoing, []
        return out

    def statistics(self) -> MdnsStatistics:
        return MdnsStatistics(
            len(self._local), len(self._cached), self._malformed, self._cache_full_drops
        )

    # --- time --------------------------------------------------------------------------------

    def get_timer(self) -> float:
        """When `handle_timer` next has work: an expiry or a re-announcement."""
        local = (min(e.expires, e.next_announce) for e in self._local.values())
        cached = (c.expires for c in self._cached.values())
        return min(min(local, default=math.inf), min(cached, default=math.inf))

    def handle_timer(self, now: float) -> None:
        self._expire(now)
        for entry in self._local.values():
            if entry.next_announce <= now:
                self._reannounce(entry, now)

    def _reannounce(self, entry: _Local, now: float) -> None:
        if entry.expires - now >= 1:
            self._announce(entry, now, repeat=False)
        else:  # under a second left: an announcement would outlive the registration
            entry.next_announce = math.inf

    def _announce(self, entry: _Local, now: float, *, repeat: bool) -> None:
        ttl = self._dns_ttl(entry, now)
        self._outgoing.append(Datagram(build_response(entry.instance, ttl)))
        entry.next_announce = now + (ANNOUNCE_REPEAT if repeat else ttl / 2)

    @staticmethod
    def _dns_ttl(entry: _Local, now: float) -> int:
        # Rounded down so peers never keep a node past its registration's expiry.
        return max(1, int(min(entry.expires - now, MAX_DNS_TTL)))

    def _expire(self, now: float) -> None:
        for name in [n for n, c in self._cached.items() if c.expires <= now]:
            self._set_cached(name, None)
        for name in [n for n, e in self._local.items() if e.expires <= now]:
            self._set_local(name, None)  # peers' caches expire at the same moment

    # --- the wire ----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, source: tuple[str, int], now: float) -> None:
        """A datagram heard on port 5353 (from `source`); malformed ones are counted, dropped."""
        try:
            msg = parse_datagram(data)
        except WireError as exc:
            self._malformed += 1
            log.debug("dropped a datagram from %s: %s", source, exc)
            return
        if not is_standard(msg):
            return
        if not is_response(msg):
            self._answer(read_query(msg, source[1]), data, source, now)
        elif source[1] == MDNS_PORT:  # RFC 6762 §6: responses from elsewhere are not trusted
            for heard in read_announcements(msg, self.domain):
                self._ingest(heard, now)

    def _ingest(self, heard: Heard, now: float) -> None:
        if heard.name in self._local:
            return  # our own announcement, looped back (or a clash: ours is what we serve)
        if heard.record is None:
            self._set_cached(heard.name, None)
        elif heard.name in self._cached or len(self._cached) < self.max_cached:
            self._set_cached(heard.name, _Cached(heard.record, heard.ttl, now + heard.ttl))
        else:
            self._cache_full_drops += 1

    def _answer(self, query: Query, data: bytes, source: tuple[str, int], now: float) -> None:
        if self._seen_recently(data, source if query.legacy else None, now):
            return
        destination = source if query.legacy else None
        if self._local and any(self._asks_enumeration(q) for q in query.questions):
            self._outgoing.append(Datagram(build_enumeration(MAX_DNS_TTL, legacy=query.legacy)))
        for name in self._matching(query):
            entry = self._local[name]
            ttl = self._dns_ttl(entry, now)
            if query.known.get(name, 0) * 2 >= ttl:
                continue  # the asker already holds it with over half its TTL (§7.1)
            answer = build_response(entry.instance, ttl, legacy=query.legacy)
            self._outgoing.append(Datagram(answer, destination))

    def _seen_recently(self, data: bytes, source: tuple[str, int] | None, now: float) -> bool:
        key = hashlib.sha256(data + repr(source).encode()).digest()
        recent = self._recent_queries
        while recent and (len(recent) >= MAX_RECENT_QUERIES or self._stale(recent, now)):
            del recent[next(iter(recent))]
        if key in recent:
            return True
        recent[key] = now
        return False

    @staticmethod
    def _stale(recent: dict[bytes, float], now: float) -> bool:
        return now - recent[next(iter(recent))] > QUERY_DEDUPE_WINDOW

    @staticmethod
    def _asks_enumeration(question: tuple[dns.name.Name, int]) -> bool:
        return question[0] == SERVICE_ENUMERATION and question[1] in _PTR_QUESTIONS

    def _matching(self, query: Query) -> list[dns.name.Name]:
        """Our instances that answer one of the questions, in registration order."""
        wanted: set[dns.name.Name] = set()
        for qname, qtype in query.questions:
            wanted.update(self._answers_to(qname, qtype))
        return [name for name in self._local if name in wanted]

    def _answers_to(self, qname: dns.name.Name, qtype: int) -> Iterator[dns.name.Name]:
        if qname in (SERVICE_TYPE, self._subtype) and qtype in _PTR_QUESTIONS:
            yield from self._local
        elif qname in self._local and qtype in _INSTANCE_QUESTIONS:
            yield qname
        elif qtype in _HOST_QUESTIONS:
            yield from (n for n, e in self._local.items() if e.instance.target.name == qname)

    # --- bookkeeping of the merged view ------------------------------------------------------

    def _set_local(self, name: dns.name.Name, entry: _Local | None) -> None:
        before = self._key_of(name)
        if entry is None:
            self._local.pop(name, None)
        else:
            self._local[name] = entry
        self._reindex(name, before)

    def _set_cached(self, name: dns.name.Name, entry: _Cached | None) -> None:
        before = self._key_of(name)
        if entry is None:
            self._cached.pop(name, None)
        else:
            self._cached[name] = entry
        self._reindex(name, before)

    def _visible(self, name: dns.name.Name) -> ServiceRecord | None:
        local = self._local.get(name)
        if local is not None:
            return local.instance.record
        cached = self._cached.get(name)
        return None if cached is None else cached.record

    def _key_of(self, name: dns.name.Name) -> _Key | None:
        record = self._visible(name)
        return None if record is None else (record.name, record.version)

    def _reindex(self, name: dns.name.Name, before: _Key | None) -> None:
        after = self._key_of(name)
        if before is not None and before != after:
            self._index[before].discard(name)
        if after is not None:
            self._index.setdefault(after, set()).add(name)
        for key in dict.fromkeys(k for k in (before, after) if k is not None):
            self._refresh_view(key)

    def _refresh_view(self, key: _Key) -> None:
        old, new = self._shown.get(key), self._snapshot(key)
        if new == old:
            return
        if new is None:
            assert old is not None
            del self._shown[key]
            self._index.pop(key, None)
            self._events.append(WatchEvent("delete", attrs.evolve(old, nodes=())))
            return
        self._shown[key] = new
        self._events.append(WatchEvent("create" if old is None else "update", new))

    def _snapshot(self, key: _Key) -> ServiceRecord | None:
        records = [r for n in self._index.get(key, ()) if (r := self._visible(n)) is not None]
        if not records:
            return None
        # Metadata and endpoints from the lowest node id: stable whichever node spoke last.
        records.sort(key=lambda r: r.nodes[0].id)
        nodes: Any = tuple(r.nodes[0] for r in records)  # Any: see _mdns_wire._load_blob
        return attrs.evolve(records[0], nodes=nodes)
