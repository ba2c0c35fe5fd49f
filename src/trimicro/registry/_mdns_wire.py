"""DNS-SD names, TXT records and mDNS messages for the `mdns://` registry (sans-io).

Every node of every registered service version is one DNS-SD service instance (RFC 6763) of
type `_trimicro._udp.local.`, so `avahi-browse _trimicro._udp` or python-zeroconf list them:

    _trimicro._udp.local.                  PTR  greeter\\.v1-3f2a9c1b04de._trimicro._udp.local.
    _site-a._sub._trimicro._udp.local.     PTR  (the same instance: the site's subtype)
    greeter\\.v1-3f2a9c1b04de._trimicro._udp.local.  SRV 0 0 9000 ip-10-0-0-7.local.
                                                   TXT "txtvers=1" "name=greeter.v1" ... "rec0=..."
    ip-10-0-0-7.local.                     A    10.0.0.7

The instance label is the service name (truncated to fit 63 bytes) and 12 hex digits of
SHA-256 over (site, service, node id): unique per node, stable across re-registrations, and
readable in a browser. The TXT record carries readable keys for people and tools, and the
whole record as compressed CBOR in `recN` chunks, which is what trimicro peers read.
docs/protocol.md (the mDNS section) is the normative description.

This module does no I/O and reads no clock: the state machine in `_mdns_proto` and the trio
driver in `_mdns` use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from ..codec import CodecError, cbor_dumps, cbor_loads
from ._model import Endpoint, Node, ServiceRecord

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MDNS_PORT",
    "SERVICE_ENUMERATION",
    "SERVICE_TYPE",
    "Heard",
    "Instance",
    "LegacyQuery",
    "Query",
    "WireError",
    "build_enumeration",
    "build_query",
    "build_response",
    "decode_txt",
    "encode_txt",
    "escape_label",
    "instance_label",
    "instance_name",
    "is_response",
    "is_standard",
    "make_instance",
    "parse_datagram",
    "read_announcements",
    "read_query",
    "schemas_dropped",
    "subtype_name",
    "unescape_label",
    "validate_domain",
]

IN = dns.rdataclass.IN
SERVICE_TYPE = dns.name.from_text("_trimicro._udp.local.")
#: RFC 6763 §9: browsers ask this name for the service types present on the link.
SERVICE_ENUMERATION = dns.name.from_text("_services._dns-sd._udp.local.")
LOCAL = dns.name.from_text("local.")
MDNS_PORT = 5353

#: Largest announcement we send. RFC 6762 §17 allows 9,000 bytes with IP/UDP headers.
MAX_MESSAGE_SIZE = 8192
#: Largest decompressed `rec` blob we accept: a zlib bomb stops here.
MAX_BLOB_SIZE = 1 << 20
#: Base64 characters per `recN=` TXT string (key and value stay within the 255-byte limit).
BLOB_CHUNK = 240
#: RFC 6762 §6.7: answers to legacy (non-5353) queriers carry TTLs of at most 10 s.
LEGACY_TTL = 10
#: Known answers a query carries at most (RFC 6762 §7.1 suppression); the rest are re-sent.
MAX_KNOWN_ANSWERS = 64
BLOB_VERSION = 1
_HASH_HEX = 12
_LABEL_LIMIT = 63
_OWN_KEYS = frozenset({"txtvers", "name", "version", "node", "domain"})
_BLOB_KEY = re.compile(r"rec(\d{1,3})")
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]{0,59}[a-z0-9])?")
_UNIQUE_TYPES = frozenset(
    {dns.rdatatype.SRV, dns.rdatatype.TXT, dns.rdatatype.A, dns.rdatatype.AAAA}
)


class WireError(ValueError):
    """A datagram, name or TXT record that does not follow the protocol."""


# --- names -----------------------------------------------------------------------------------


def validate_domain(domain: str) -> str:
    """The site name of `?domain=`: it becomes the subtype label `_<domain>`."""
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(
            f"domain {domain!r} must be 1-61 lowercase letters, digits or inner hyphens"
        )
    return domain


def subtype_name(domain: str) -> dns.name.Name:
    """`_<domain>._sub._trimicro._udp.local.`: browsing it lists one site only."""
    return dns.name.Name([b"_" + domain.encode(), b"_sub"]).concatenate(SERVICE_TYPE)


def instance_label(domain: str, service: str, node_id: str) -> str:
    """`<service>-<12 hex>`: the service name first, made unique by a hash of the node."""
    digest = hashlib.sha256("\0".join((domain, service, node_id)).encode()).hexdigest()
    prefix = service.encode()[: _LABEL_LIMIT - _HASH_HEX - 1].decode("utf-8", "ignore")
    return f"{prefix}-{digest[:_HASH_HEX]}"


def instance_name(label: str) -> dns.name.Name:
    return dns.name.Name([label.encode()]).concatenate(SERVICE_TYPE)


def escape_label(label: str) -> str:
    """RFC 6763 §4.3 presentation of one label: `.` and `\\` escaped, controls as `\\DDD`."""
    return "".join(_escape_char(ch) for ch in label)


def _escape_char(ch: str) -> str:
    if ch in ".\\":
        return "\\" + ch
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\{ord(ch):03d}"
    return ch


_ESCAPE = re.compile(r"\\(\d{3}|.)", re.DOTALL)


def unescape_label(text: str) -> str:
    """The inverse of `escape_label` (also accepts any RFC 1035 `\\DDD` byte escape)."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos : match.start()].encode()
        out += _unescape_one(match.group(1))
        pos = match.end()
    if text.endswith("\\") and not text.endswith("\\\\"):
        raise ValueError(f"dangling backslash in {text!r}")
    out += text[pos:].encode()
    return out.decode()


def _unescape_one(escaped: str) -> bytes:
    if len(escaped) == 3 and escaped.isdigit():
        if int(escaped) > 255:
            raise ValueError(f"escape \\{escaped} is not a byte")
        return bytes([int(escaped)])
    return escaped.encode()


# --- host names ------------------------------------------------------------------------------


@attrs.frozen
class HostTarget:
    """SRV target and port for a node address, and the A/AAAA record naming that target."""

    name: dns.name.Name
    port: int
    address: dns.rdata.Rdata | None


def host_target(address: str) -> HostTarget:
    """`10.0.0.7:9000` → `ip-10-0-0-7.local.` + A; a host name is used as it is; else `.`."""
    host, port = _split_host_port(address)
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return HostTarget(_host_name(host), port, None)
    if ip.version == 4:
        label = "ip-" + str(ip).replace(".", "-")
        return HostTarget(_local_host(label), port, _a(str(ip)))
    label = "ip6-" + str(ip).replace(":", "-")
    return HostTarget(_local_host(label), port, _aaaa(str(ip)))


def _split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        return "", 0  # not host:port (a memory address, say): SRV says "no service here"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _local_host(label: str) -> dns.name.Name:
    return dns.name.Name([label.encode()]).concatenate(LOCAL)


def _host_name(host: str) -> dns.name.Name:
    if not host:
        return dns.name.root
    try:
        return dns.name.from_text(host)
    except (dns.exception.DNSException, ValueError):
        return dns.name.root


# --- TXT -------------------------------------------------------------------------------------


def encode_txt(domain: str, record: ServiceRecord) -> tuple[bytes, ...]:
    """Readable `key=value` strings for tools, then the record as CBOR+zlib+base64 chunks."""
    node = record.nodes[0]
    own = [
        ("txtvers", str(BLOB_VERSION)),
        ("name", record.name),
        ("version", record.version),
        ("node", node.id),
        ("domain", domain),
    ]
    metadata = [(k, v) for k, v in sorted(node.metadata.items()) if k.lower() not in _OWN_KEYS]
    strings = list(_readable_strings([*own, *metadata]))
    blob = base64.b64encode(zlib.compress(_dump_blob(domain, record), 9))
    for index, start in enumerate(range(0, len(blob), BLOB_CHUNK)):
        strings.append(f"rec{index}=".encode() + blob[start : start + BLOB_CHUNK])
    return tuple(strings)


def _readable_strings(pairs: Iterable[tuple[str, str]]) -> Iterator[bytes]:
    # RFC 6763 §6.4: keys are printable ASCII without "=", compared case-insensitively, and
    # only the first of a repeated key counts; values that do not fit live in the blob only.
    seen: set[str] = set()
    for key, value in pairs:
        folded = key.lower()
        if folded in seen or not _valid_key(key) or _BLOB_KEY.fullmatch(folded):
            continue
        string = f"{key}={value}".encode()
        if len(string) <= 255:
            seen.add(folded)
            yield string


def _valid_key(key: str) -> bool:
    return bool(key) and all(0x20 <= ord(c) <= 0x7E and c != "=" for c in key)


def _dump_blob(domain: str, record: ServiceRecord) -> bytes:
    node = record.nodes[0]
    document = {
        "v": BLOB_VERSION,
        "domain": domain,
        "name": record.name,
        "version": record.version,
        "metadata": dict(record.metadata),
        "endpoints": [_dump_endpoint(e) for e in record.endpoints],
        "node": {"id": node.id, "address": node.address, "metadata": dict(node.metadata)},
    }
    try:
        return cbor_dumps(document)
    except CodecError as exc:
        raise ValueError(f"service {record.name!r} cannot be published: {exc}") from None


def _dump_endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "request": endpoint.request,
        "response": endpoint.response,
        "metadata": dict(endpoint.metadata),
    }


def decode_txt(strings: Sequence[bytes]) -> tuple[str, ServiceRecord]:
    """(domain, one-node record) from the `recN` chunks; the readable keys are not needed."""
    chunks: dict[int, bytes] = {}
    for string in strings:
        key, _, value = string.partition(b"=")
        match = _BLOB_KEY.fullmatch(key.decode("ascii", "replace").lower())
        if match and int(match.group(1)) not in chunks:
            chunks[int(match.group(1))] = value
    if not chunks or sorted(chunks) != list(range(len(chunks))):
        raise WireError("TXT record has no complete rec0..recN sequence")
    return _load_blob(_inflate(b"".join(chunks[i] for i in range(len(chunks)))))


def _inflate(encoded: bytes) -> bytes:
    try:
        compressed = base64.b64decode(encoded, validate=True)
        inflater = zlib.decompressobj()
        data = inflater.decompress(compressed, MAX_BLOB_SIZE)
    except (binascii.Error, zlib.error) as exc:
        raise WireError(f"bad rec blob: {exc}") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise WireError(f"rec blob is truncated or inflates beyond {MAX_BLOB_SIZE} bytes")
    return data


def _load_blob(data: bytes) -> tuple[str, ServiceRecord]:
    try:
        doc = cbor_loads(data)
    except CodecError as exc:
        raise WireError(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("v") != BLOB_VERSION:
        raise WireError("rec blob is not a version 1 map")
    node = _map(doc, "node")
    endpoints = [_load_endpoint(e) for e in _list(doc, "endpoints")]
    nodes = (Node(_text(node, "id"), _text(node, "address"), _text_map(node, "metadata")),)
    record = ServiceRecord(
        _text(doc, "name"), _text(doc, "version"), _text_map(doc, "metadata"), endpoints, nodes
    )
    return _text(doc, "domain"), record


def _load_endpoint(value: Any) -> Endpoint:
    if not isinstance(value, dict):
        raise WireError("endpoint is not a map")
    return Endpoint(
        _text(value, "name"), value.get("request"), value.get("response"),
        _text_map(value, "metadata"),
    )  # fmt: skip


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise WireError(f"rec field {key!r} is not text")
    return value


def _map(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise WireError(f"rec field {key!r} is not a map")
    return value


def _list(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise WireError(f"rec field {key!r} is not an array")
    return value


def _text_map(doc: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _map(doc, key)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise WireError(f"rec field {key!r} is not a map of text to text")
    return value


# --- instances -------------------------------------------------------------------------------


@attrs.frozen
class Instance:
    """One node of one service version, ready to be put on the wire."""

    domain: str
    record: ServiceRecord  # exactly one node
    name: dns.name.Name
    target: HostTarget
    txt: tuple[bytes, ...]


def make_instance(domain: str, record: ServiceRecord) -> Instance:
    """The instance for a one-node record; endpoint schemas go if they do not fit (see docs)."""
    instance = _instance(domain, record)
    if len(build_response(instance, 1)) <= MAX_MESSAGE_SIZE:
        return instance
    bare: Any = tuple(attrs.evolve(e, request=None, response=None) for e in record.endpoints)
    slim = attrs.evolve(record, endpoints=bare)
    instance = _instance(domain, slim)
    size = len(build_response(instance, 1))
    if size > MAX_MESSAGE_SIZE:
        raise ValueError(
            f"service {record.name!r} needs {size} bytes as an mDNS announcement even without "
            f"endpoint schemas (limit {MAX_MESSAGE_SIZE}): use fewer endpoints or metadata"
        )
    return instance


def _instance(domain: str, record: ServiceRecord) -> Instance:
    node = record.nodes[0]
    name = instance_name(instance_label(domain, record.name, node.id))
    return Instance(domain, record, name, host_target(node.address), encode_txt(domain, record))


def schemas_dropped(instance: Instance, original: ServiceRecord) -> bool:
    return instance.record.endpoints != original.endpoints


# --- messages --------------------------------------------------------------------------------


@attrs.frozen
class LegacyQuery:
    """A query from a port other than 5353 (RFC 6762 §6.7): answered by unicast, id echoed."""

    id: int
    questions: tuple[tuple[dns.name.Name, dns.rdatatype.RdataType], ...]


@attrs.frozen
class Query:
    questions: tuple[tuple[dns.name.Name, dns.rdatatype.RdataType], ...]  # (name, rdtype)
    known: Mapping[dns.name.Name, int]  # instance name → remaining TTL the asker holds
    legacy: LegacyQuery | None


@attrs.frozen
class Heard:
    """An instance announced (`record` set) or withdrawn (`record` None, a goodbye)."""

    name: dns.name.Name
    ttl: int
    record: ServiceRecord | None


def build_response(instance: Instance, ttl: int, *, legacy: LegacyQuery | None = None) -> bytes:
    """Every record of `instance` in one message; `ttl` 0 makes it a goodbye (RFC 6762 §10.1)."""
    if legacy is not None:
        ttl = min(ttl, LEGACY_TTL)
    msg = _response(legacy)
    for owner in (SERVICE_TYPE, subtype_name(instance.domain)):
        msg.answer.append(_rrset(owner, ttl, _ptr(instance.name)))
    target = instance.target
    srv = _srv(target.port, target.name)
    msg.answer.append(_rrset(instance.name, ttl, srv))
    if ttl:  # a goodbye needs only the PTRs and SRV: the TXT would make it needlessly large
        msg.answer.append(_rrset(instance.name, ttl, _txt(instance.txt)))
        if target.address is not None:
            msg.additional.append(_rrset(target.name, ttl, target.address))
    wire = msg.to_wire()
    return wire if legacy is not None or not ttl else _set_cache_flush(wire)


def build_enumeration(ttl: int, *, legacy: LegacyQuery | None = None) -> bytes:
    """RFC 6763 §9: `_services._dns-sd._udp.local. PTR _trimicro._udp.local.`."""
    msg = _response(legacy)
    ttl = ttl if legacy is None else min(ttl, LEGACY_TTL)
    msg.answer.append(_rrset(SERVICE_ENUMERATION, ttl, _ptr(SERVICE_TYPE)))
    wire: bytes = msg.to_wire()
    return wire


def build_query(
    domain: str, known: Iterable[tuple[dns.name.Name, int]], *, query_id: int = 0
) -> bytes:
    """Ask for the site's subtype; `known` (instance, TTL left) suppresses answers we hold.

    `query_id` marks the asker (see `MdnsCore`); RFC 6762 §18.1 lets receivers ignore it.
    """
    owner = subtype_name(domain)
    msg = dns.message.Message(id=query_id)
    msg.flags = 0
    msg.question.append(dns.rrset.RRset(owner, IN, dns.rdatatype.PTR))
    for count, (name, ttl) in enumerate(known):
        if count >= MAX_KNOWN_ANSWERS:
            break
        # One RRset per record: each known answer keeps its own TTL on the wire.
        msg.answer.append(_rrset(owner, ttl, _ptr(name)))
    wire: bytes = msg.to_wire()
    return wire


def _response(legacy: LegacyQuery | None) -> dns.message.Message:
    msg = dns.message.Message(id=0 if legacy is None else legacy.id)
    msg.flags = dns.flags.QR | dns.flags.AA
    for name, rdtype in () if legacy is None else legacy.questions:
        msg.question.append(dns.rrset.RRset(name, IN, rdtype))
    return msg


def _rrset(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> dns.rrset.RRset:
    return dns.rrset.from_rdata(name, ttl, rdata)


# dnspython's rdata constructors are untyped; these give them types in one place.
def _ptr(target: dns.name.Name) -> dns.rdata.Rdata:
    return PTR(IN, dns.rdatatype.PTR, target)  # type: ignore[no-untyped-call]


def _srv(port: int, target: dns.name.Name) -> dns.rdata.Rdata:
    return SRV(IN, dns.rdatatype.SRV, 0, 0, port, target)  # type: ignore[no-untyped-call]


def _txt(strings: tuple[bytes, ...]) -> dns.rdata.Rdata:
    return TXT(IN, dns.rdatatype.TXT, strings)


def _a(address: str) -> dns.rdata.Rdata:
    return A(IN, dns.rdatatype.A, address)  # type: ignore[no-untyped-call]


def _aaaa(address: str) -> dns.rdata.Rdata:
    return AAAA(IN, dns.rdatatype.AAAA, address)  # type: ignore[no-untyped-call]


# --- parsing ---------------------------------------------------------------------------------


def parse_datagram(data: bytes) -> dns.message.Message:
    """dnspython's parse, after clearing mDNS's unicast-response and cache-flush class bits."""
    try:
        return dns.message.from_wire(
            _clear_mdns_bits(data), one_rr_per_rrset=True, ignore_trailing=True
        )
    except (dns.exception.DNSException, ValueError, IndexError, KeyError) as exc:
        raise WireError(f"malformed DNS message: {type(exc).__name__}: {exc}") from None


def is_response(msg: dns.message.Message) -> bool:
    return bool(msg.flags & dns.flags.QR)


def is_standard(msg: dns.message.Message) -> bool:
    # RFC 6762 §18.3/18.11: other opcodes and non-zero rcodes are silently ignored.
    return dns.opcode.from_flags(msg.flags) == dns.opcode.QUERY and msg.rcode() == 0


def read_query(msg: dns.message.Message, source_port: int) -> Query:
    questions = tuple((q.name, q.rdtype) for q in msg.question)
    known = {
        rr[0].target: rr.ttl
        for rr in msg.answer
        if rr.rdtype == dns.rdatatype.PTR and rr.name.is_subdomain(SERVICE_TYPE)
    }
    legacy = None if source_port == MDNS_PORT else LegacyQuery(msg.id, questions)
    return Query(questions, known, legacy)


def read_announcements(msg: dns.message.Message, domain: str) -> Iterator[Heard]:
    """Instances of our type in a response; those of other sites are skipped."""
    records = [*msg.answer, *msg.additional]
    txt = {rr.name: rr for rr in records if rr.rdtype == dns.rdatatype.TXT}
    owners = (SERVICE_TYPE, subtype_name(domain))
    seen: set[dns.name.Name] = set()
    for rr in records:
        if rr.rdtype != dns.rdatatype.PTR or rr.name not in owners:
            continue
        target: dns.name.Name = rr[0].target
        # A corrupted target may be the root name, which has no parent (NoParent).
        if target in seen or len(target.labels) < 2 or target.parent() != SERVICE_TYPE:
            continue
        seen.add(target)
        heard = _heard(target, rr.ttl, txt.get(target), domain)
        if heard is not None:
            yield heard


def _heard(name: dns.name.Name, ttl: int, txt: dns.rrset.RRset | None, domain: str) -> Heard | None:
    if ttl == 0:
        return Heard(name, 0, None)
    if txt is None or txt.ttl == 0:
        return None
    try:
        site, record = decode_txt(txt[0].strings)
    except WireError:
        return None
    return Heard(name, ttl, record) if site == domain else None


# --- mDNS class bits -------------------------------------------------------------------------


def _class_fields(wire: bytes) -> Iterator[tuple[int, int, bool]]:
    """(offset of the class field, rdtype, in the question section) for every entry."""
    try:
        counts = struct.unpack_from("!4H", wire, 4)
        pos = 12
        for section, count in enumerate(counts):
            for _ in range(count):
                pos = _skip_name(wire, pos)
                rdtype, _ = struct.unpack_from("!HH", wire, pos)
                yield pos + 2, rdtype, section == 0
                pos += 4 if section == 0 else 10 + struct.unpack_from("!H", wire, pos + 8)[0]
    except (struct.error, IndexError):
        raise WireError("truncated DNS message") from None


def _skip_name(wire: bytes, pos: int) -> int:
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2  # a compression pointer ends the name
        if length & 0xC0:
            raise WireError("unsupported label type")
        pos += 1 + length


def _clear_mdns_bits(wire: bytes) -> bytes:
    out = bytearray(wire)
    for offset, _, _ in _class_fields(wire):
        out[offset] &= 0x7F
    return bytes(out)


def _set_cache_flush(wire: bytes) -> bytes:
    # RFC 6762 §10.2: SRV, TXT and address records have one owner; the bit tells caches to
    # replace what they hold (a changed TXT) instead of adding to it.
    out = bytearray(wire)
    for offset, rdtype, question in _class_fields(wire):
        if not question and rdtype in _UNIQUE_TYPES:
            out[offset] |= 0x80
    return bytes(out)
