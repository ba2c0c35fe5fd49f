"""DNS-SD names, TXT encoding and message round trips of the `mdns://` registry (sans-io)."""

from __future__ import annotations

import ast
import base64
import hashlib
import zlib
from pathlib import Path
from typing import Any

import dns.flags
import dns.name
import dns.rdatatype
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.registry._mdns_proto import MdnsCore
from trimicro.registry._mdns_wire import (
    MAX_MESSAGE_SIZE,
    SERVICE_TYPE,
    WireError,
    build_response,
    decode_txt,
    encode_txt,
    escape_label,
    host_target,
    instance_label,
    instance_name,
    make_instance,
    parse_datagram,
    read_announcements,
    subtype_name,
    unescape_label,
    validate_domain,
)
from trimicro.registry._model import Endpoint, Node, ServiceRecord

SOURCE = ("127.0.0.1", 5353)
SANS_IO = ["_mdns_wire.py", "_mdns_proto.py"]
FORBIDDEN = {"trio", "socket", "time", "random", "asyncio", "threading"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
text_maps = st.dictionaries(st.text(max_size=15), st.text(max_size=40), max_size=5)
addresses = st.sampled_from(
    ["127.0.0.1:9000", "10.1.2.3:443", "[fd00::2]:9000", "myhost.lan:80", "memory-site", ""]
)


@st.composite
def records(draw: Any) -> ServiceRecord:
    endpoints = draw(
        st.lists(
            st.builds(Endpoint, st.text(max_size=30), json_values, json_values, text_maps),
            max_size=8,
        )
    )
    node = Node(draw(st.text(min_size=1, max_size=50)), draw(addresses), draw(text_maps))
    return ServiceRecord(
        draw(st.text(min_size=1, max_size=80)),
        draw(st.text(max_size=20)),
        draw(text_maps),
        endpoints,
        [node],
    )


def big_schema(fields: int) -> dict[str, Any]:
    properties = {f"field_{i}": {"type": "string", "description": f"#{i}"} for i in range(fields)}
    return {"type": "object", "properties": properties, "required": sorted(properties)}


def noise(size: int, seed: int = 0) -> str:
    """Incompressible text: hash output, base64-encoded."""
    blocks = (hashlib.sha256(f"{seed}/{i}".encode()).digest() for i in range(size // 32 + 1))
    return base64.b64encode(b"".join(blocks)).decode()[:size]


def node(metadata: dict[str, str] | None = None) -> Node:
    meta = {"transport": "quic", "protocol": "1", "cert_sha256": "ab" * 32}
    return Node("greeter.v1-7f3e", "127.0.0.1:9000", meta if metadata is None else metadata)


# --- names -----------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=63))
def test_escaping_round_trips(label: str) -> None:
    escaped = escape_label(label)
    assert unescape_label(escaped) == label
    assert "." not in escaped.replace("\\.", "").replace("\\\\", "")


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60))
def test_escaped_labels_parse_as_dns_presentation(label: str) -> None:
    name = dns.name.from_text(escape_label(label) + "._trimicro._udp.local.")
    assert name.labels[0] == label.encode()


def test_dots_in_service_names_are_escaped() -> None:
    label = instance_label("trimicro", "greeter.v1", "node-1")
    assert escape_label(label).startswith("greeter\\.v1-")
    name = instance_name(label)
    assert name.labels[0].startswith(b"greeter.v1-")
    assert name.parent() == SERVICE_TYPE


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=80))
def test_instance_labels_fit_and_are_unique_per_node(service: str, node_id: str) -> None:
    label = instance_label("trimicro", service, node_id)
    assert len(label.encode()) <= 63
    assert label == instance_label("trimicro", service, node_id)
    assert label != instance_label("trimicro", service, node_id + "x")
    assert label != instance_label("other", service, node_id)
    instance_name(label)  # a valid DNS name


def test_domain_names_and_subtypes() -> None:
    assert subtype_name("site-a").to_text() == "_site-a._sub._trimicro._udp.local."
    for bad in ["", "Site", "-a", "a-", "a.b", "a_b", "x" * 62]:
        with pytest.raises(ValueError, match="domain"):
            validate_domain(bad)


def test_host_targets() -> None:
    v4 = host_target("10.0.0.7:9000")
    assert (v4.name.to_text(), v4.port, v4.address.to_text()) == (
        "ip-10-0-0-7.local.",
        9000,
        "10.0.0.7",
    )
    v6 = host_target("[fd00::2]:443")
    assert (v6.name.to_text(), v6.address.rdtype) == ("ip6-fd00--2.local.", dns.rdatatype.AAAA)
    named = host_target("myhost.lan:80")
    assert (named.name.to_text(), named.address) == ("myhost.lan.", None)
    assert host_target("memory-site").port == 0  # SRV "." port 0: no service at an address


# --- TXT -------------------------------------------------------------------------------------


@given(records())
def test_txt_round_trips(record: ServiceRecord) -> None:
    strings = encode_txt("site", record)
    assert all(len(s) <= 255 for s in strings)
    assert decode_txt(strings) == ("site", record)


def test_txt_has_readable_keys_then_the_blob() -> None:
    record = ServiceRecord("greeter.v1", "1.0.0", nodes=[node({**node().metadata, "name": "x"})])
    strings = encode_txt("trimicro", record)
    assert strings[:5] == (
        b"txtvers=1",
        b"name=greeter.v1",
        b"version=1.0.0",
        b"node=greeter.v1-7f3e",
        b"domain=trimicro",
    )
    assert b"cert_sha256=" + b"ab" * 32 in strings
    assert b"transport=quic" in strings and b"protocol=1" in strings
    assert b"name=x" not in strings  # a metadata key may not shadow ours: it lives in the blob
    assert strings[-1].startswith(b"rec0=")


@pytest.mark.parametrize(
    "strings",
    [
        [b"txtvers=1"],
        [b"rec1=AAAA"],
        [b"rec0=not base64!"],
        [b"rec0=" + base64.b64encode(b"not zlib")],
        [b"rec0=" + base64.b64encode(zlib.compress(b"\xff\xff"))],
        [b"rec0=" + base64.b64encode(zlib.compress(b"\xa1\x61v\x02"))],  # {"v": 2}
        [b"rec0=" + base64.b64encode(zlib.compress(b"\0" * (2 << 20)))],  # a zlib bomb
    ],
)
def test_bad_txt_is_refused(strings: list[bytes]) -> None:
    with pytest.raises(WireError):
        decode_txt(strings)


# --- messages --------------------------------------------------------------------------------


def send(record: ServiceRecord, ttl: float | None = 60) -> MdnsCore:
    """Register on one core, deliver its announcement to another; return the receiver."""
    sender, receiver = MdnsCore("site"), MdnsCore("site")
    sender.register(record, ttl, 0.0)
    for datagram in sender.datagrams_to_send():
        assert len(datagram.data) <= MAX_MESSAGE_SIZE
        receiver.receive_datagram(datagram.data, SOURCE, 0.0)
    return receiver


@given(records())
def test_announcements_round_trip(record: ServiceRecord) -> None:
    received = send(record).services(0.0)
    instance = make_instance("site", record)
    assert received == [instance.record]  # the record itself unless schemas had to go


def test_large_schemas_round_trip_compressed() -> None:
    endpoints = [Endpoint(f"Api.Call{i}", big_schema(60), big_schema(30)) for i in range(12)]
    record = ServiceRecord("big.service", "2.0", {"owner": "core"}, endpoints, [node()])
    raw = sum(len(repr(e.request)) + len(repr(e.response)) for e in endpoints)
    assert raw > 4 * MAX_MESSAGE_SIZE  # far beyond one packet before compression
    assert send(record).services(0.0) == [record]


def test_schemas_are_dropped_when_even_compressed_they_do_not_fit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request, response = ({"type": "object", "description": noise(5000, seed)} for seed in (1, 2))
    record = ServiceRecord("huge", endpoints=[Endpoint("A.B", request, response)], nodes=[node()])
    (received,) = send(record).services(0.0)
    assert received.endpoints == (Endpoint("A.B"),)
    assert "endpoint schemas left out of mDNS" in caplog.text


def test_a_record_that_cannot_fit_is_refused() -> None:
    metadata = {f"k{i}": noise(200, seed=i) for i in range(60)}
    record = ServiceRecord("meta", metadata=metadata, nodes=[node()])
    with pytest.raises(ValueError, match="mDNS announcement"):
        MdnsCore().register(record, 60, 0.0)


def test_announcements_set_cache_flush_on_unique_records_and_goodbyes_do_not() -> None:
    instance = make_instance("site", ServiceRecord("s", nodes=[node()]))
    for ttl, flushed in ((60, True), (0, False)):
        wire = build_response(instance, ttl)
        msg = parse_datagram(wire)
        assert msg.flags & dns.flags.QR and msg.flags & dns.flags.AA
        srv_class_offset = wire.index(b"\x00\x21") + 2  # the SRV record's type field
        assert bool(wire[srv_class_offset] & 0x80) is flushed


@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    core = MdnsCore("site")
    core.register(ServiceRecord("s", nodes=[node()]), 60, 0.0)
    core.receive_datagram(data, SOURCE, 1.0)
    core.receive_datagram(data, ("127.0.0.1", 40000), 1.0)


@given(st.data())
def test_corrupted_announcements_never_raise(data: st.DataObject) -> None:
    instance = make_instance("site", ServiceRecord("s", nodes=[node()]))
    wire = bytearray(build_response(instance, 60))
    for _ in range(data.draw(st.integers(1, 8))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    MdnsCore("site").receive_datagram(bytes(wire[:cut]), SOURCE, 0.0)


# --- the sans-io rule --------------------------------------------------------------------------


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_import_no_io(module: str) -> None:
    path = Path(__file__).parents[2] / "src" / "trimicro" / "registry" / module
    imported = set()
    for statement in ast.walk(ast.parse(path.read_text())):
        if isinstance(statement, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0:
            imported.add((statement.module or "").split(".")[0])
    assert not imported & FORBIDDEN


def test_a_ptr_to_the_root_name_is_skipped() -> None:
    """Found by hypothesis (corrupted announcements): a PTR whose target is the root name made
    `read_announcements` raise dns.name.NoParent (the root has no parent)."""
    import dns.message
    import dns.rrset

    msg = dns.message.Message()
    msg.flags |= dns.flags.QR | dns.flags.AA
    msg.answer.append(dns.rrset.from_text(SERVICE_TYPE, 60, "IN", "PTR", "."))
    assert list(read_announcements(msg, "site")) == []
