"""The `mdns://` state machine driven with explicit `now`: TTLs, goodbyes, answers, events."""

from __future__ import annotations

import math

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from trimicro.registry._mdns_proto import (
    ANNOUNCE_REPEAT,
    MAX_DNS_TTL,
    QUERY_DEDUPE_WINDOW,
    Datagram,
    MdnsCore,
)
from trimicro.registry._mdns_wire import (
    LEGACY_TTL,
    SERVICE_ENUMERATION,
    SERVICE_TYPE,
    instance_label,
    instance_name,
    parse_datagram,
    subtype_name,
)
from trimicro.registry._model import Node, ServiceRecord, WatchEvent

MDNS = ("127.0.0.1", 5353)
LEGACY = ("127.0.0.1", 40000)


def record(*node_ids: str, version: str = "1.0", **metadata: str) -> ServiceRecord:
    nodes = [Node(n, f"127.0.0.{i + 1}:9000", {"transport": "tcp"}) for i, n in enumerate(node_ids)]
    return ServiceRecord("greeter.v1", version, metadata, nodes=nodes)


def deliver(sender: MdnsCore, *receivers: MdnsCore, now: float, source=MDNS) -> list[Datagram]:
    datagrams = sender.datagrams_to_send()
    for datagram in datagrams:
        for receiver in receivers:
            receiver.receive_datagram(datagram.data, source, now)
    return datagrams


def events(core: MdnsCore) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    while (event := core.next_event()) is not None:
        out.append((event.action, tuple(n.id for n in event.service.nodes)))
    return out


def ttls(datagram: Datagram) -> set[int]:
    msg = parse_datagram(datagram.data)
    return {rr.ttl for rr in [*msg.answer, *msg.additional]}


def query(name: dns.name.Name, rdtype: int, msg_id: int = 0) -> bytes:
    msg = dns.message.Message(id=msg_id)
    msg.flags = 0
    msg.question.append(dns.rrset.RRset(name, dns.rdataclass.IN, rdtype))
    return msg.to_wire()


@pytest.fixture
def pair() -> tuple[MdnsCore, MdnsCore]:
    return MdnsCore("site"), MdnsCore("site")


def test_a_node_not_refreshed_expires_at_its_ttl(pair: tuple[MdnsCore, MdnsCore]) -> None:
    a, b = pair
    a.register(record("n1"), 2.0, now=0.0)
    (announcement,) = deliver(a, b, now=0.0)
    assert ttls(announcement) == {2}
    assert b.get_timer() == 2.0
    assert [r.nodes for r in b.services(1.99)] == [record("n1").nodes]
    b.handle_timer(2.0)
    assert b.services(2.0) == []
    assert events(b) == [("create", ("n1",)), ("delete", ())]
    assert a.services(2.0) == [] and a.datagrams_to_send() == []  # no goodbye: peers expire too


def test_refreshing_extends_life_without_events_and_changes_are_updates(
    pair: tuple[MdnsCore, MdnsCore],
) -> None:
    a, b = pair
    a.register(record("n1"), 2.0, now=0.0)
    deliver(a, b, now=0.0)
    a.register(record("n1"), 2.0, now=1.5)
    deliver(a, b, now=1.5)
    assert b.services(3.0) != [] and b.get_timer() == 3.5
    a.register(record("n1", team="core"), 2.0, now=2.0)
    deliver(a, b, now=2.0)
    assert events(b) == [("create", ("n1",)), ("update", ("n1",))]
    assert b.services(2.0)[0].metadata == {"team": "core"}


def test_goodbye_removes_at_once(pair: tuple[MdnsCore, MdnsCore]) -> None:
    a, b = pair
    a.register(record("n1", "n2"), 60, now=0.0)
    deliver(a, b, now=0.0)
    assert [n.id for n in b.services(0.0)[0].nodes] == ["n1", "n2"]
    a.deregister(record("n1"), now=1.0)
    (goodbye,) = deliver(a, b, now=1.0)
    assert ttls(goodbye) == {0}
    assert [n.id for n in b.services(1.0)[0].nodes] == ["n2"]
    a.close(now=2.0)
    deliver(a, b, now=2.0)
    assert b.services(2.0) == []
    assert events(b) == [
        ("create", ("n1",)),
        ("update", ("n1", "n2")),
        ("update", ("n2",)),
        ("delete", ()),
    ]


def test_delete_events_carry_the_record_without_nodes(pair: tuple[MdnsCore, MdnsCore]) -> None:
    a, b = pair
    a.register(record("n1", team="core"), 60, now=0.0)
    deliver(a, b, now=0.0)
    a.deregister(record("n1"), now=0.5)
    deliver(a, b, now=0.5)
    b.next_event()
    assert b.next_event() == WatchEvent(
        "delete", ServiceRecord("greeter.v1", "1.0", {"team": "core"})
    )


def test_moving_a_node_to_another_version(pair: tuple[MdnsCore, MdnsCore]) -> None:
    a, b = pair
    a.register(record("n1"), 60, now=0.0)
    a.register(record("n1", version="2.0"), 60, now=1.0)
    deliver(a, b, now=1.0)
    assert [r.version for r in b.services(1.0)] == ["2.0"]
    assert [(e.action, e.service.version) for e in iter(a.next_event, None)] == [
        ("create", "1.0"),
        ("delete", "1.0"),
        ("create", "2.0"),
    ]
    a.deregister(record("n1", version="1.0"), now=2.0)  # not what n1 serves now: no-op
    assert a.datagrams_to_send() == [] and len(a.services(2.0)) == 1


def test_local_registrations_are_visible_without_the_network() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), None, now=0.0)
    assert [r.name for r in a.services(0.0, "greeter.v1")] == ["greeter.v1"]
    assert a.services(0.0, "other") == []


def test_announcements_repeat_then_follow_half_the_ttl() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), None, now=0.0)
    assert ttls(a.datagrams_to_send()[0]) == {MAX_DNS_TTL}
    assert a.get_timer() == ANNOUNCE_REPEAT
    a.handle_timer(ANNOUNCE_REPEAT)
    assert len(a.datagrams_to_send()) == 1
    assert a.get_timer() == ANNOUNCE_REPEAT + MAX_DNS_TTL / 2
    a.register(record("n1"), None, now=5.0)  # a refresh with the same content: announced once
    assert len(a.datagrams_to_send()) == 1 and a.get_timer() == 5.0 + MAX_DNS_TTL / 2


def test_announced_ttls_never_outlive_the_registration() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), 1.5, now=0.0)
    assert ttls(a.datagrams_to_send()[0]) == {1}
    a.handle_timer(1.0)  # the repeat would say "1 s" at t=1.0 and outlive t=1.5: not sent
    assert a.datagrams_to_send() == []
    assert a.get_timer() == 1.5


def test_sites_do_not_see_each_other() -> None:
    a, b, other = MdnsCore("a"), MdnsCore("a"), MdnsCore("b")
    a.register(record("n1"), 60, now=0.0)
    other.register(record("n1"), 60, now=0.0)  # same service and node id, other site
    deliver(a, b, other, now=0.0)
    deliver(other, a, b, now=0.0)
    assert events(b) == [("create", ("n1",))] and events(other) == [("create", ("n1",))]
    assert b.statistics().cached == 1 and other.statistics().cached == 0
    b.query(now=1.0)
    deliver(b, other, now=1.0)
    assert other.datagrams_to_send() == []  # it does not answer another site's question
    other.deregister(record("n1"), now=1.0)
    deliver(other, b, now=1.0)  # its goodbye names another instance: ours stays
    assert len(b.services(1.0)) == 1 and events(b) == []


def test_queries_are_answered_unless_the_asker_knows(pair: tuple[MdnsCore, MdnsCore]) -> None:
    a, b = pair
    a.register(record("n1"), 60, now=0.0)
    a.datagrams_to_send()
    b.query(now=1.0)
    deliver(b, a, now=1.0)
    deliver(a, b, now=1.0)
    assert len(b.services(1.0)) == 1
    b.query(now=1.5 + QUERY_DEDUPE_WINDOW)  # b now lists n1 as a known answer: a stays quiet
    deliver(b, a, now=1.5 + QUERY_DEDUPE_WINDOW)
    assert a.datagrams_to_send() == []
    b.query(now=40.0)  # 20 s left of 60: under half, so b does not claim it and a answers
    deliver(b, a, now=40.0)
    assert len(a.datagrams_to_send()) == 1


def test_a_query_heard_on_two_interfaces_is_answered_once() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), 60, now=0.0)
    a.datagrams_to_send()
    asking = query(subtype_name("site"), dns.rdatatype.PTR)
    a.receive_datagram(asking, ("127.0.0.1", 5353), 1.0)
    a.receive_datagram(asking, ("192.0.2.2", 5353), 1.0)
    assert len(a.datagrams_to_send()) == 1
    a.receive_datagram(asking, ("127.0.0.1", 5353), 1.0 + 2 * QUERY_DEDUPE_WINDOW)
    assert len(a.datagrams_to_send()) == 1


def test_identical_questions_from_two_registries_are_both_answered() -> None:
    a, b, c = MdnsCore("site"), MdnsCore("site", query_id=1), MdnsCore("site", query_id=2)
    a.register(record("n1"), 60, now=0.0)
    a.datagrams_to_send()
    b.query(now=1.0)
    c.query(now=1.0)
    deliver(b, a, now=1.0)
    deliver(c, a, now=1.0)
    assert len(a.datagrams_to_send()) == 2


@pytest.mark.parametrize(
    "question",
    [
        (SERVICE_TYPE, dns.rdatatype.PTR),
        (subtype_name("site"), dns.rdatatype.ANY),
        (instance_name(instance_label("site", "greeter.v1", "n1")), dns.rdatatype.SRV),
        (instance_name(instance_label("site", "greeter.v1", "n1")), dns.rdatatype.TXT),
        (dns.name.from_text("ip-127-0-0-1.local."), dns.rdatatype.A),
    ],
)
def test_browsers_and_resolvers_are_answered(question: tuple[dns.name.Name, int]) -> None:
    a = MdnsCore("site")
    a.register(record("n1"), 60, now=0.0)
    a.datagrams_to_send()
    a.receive_datagram(query(*question), MDNS, 1.0)
    (answer,) = a.datagrams_to_send()
    assert answer.destination is None and ttls(answer) == {59}


def test_service_type_enumeration() -> None:
    a = MdnsCore("site")
    a.receive_datagram(query(SERVICE_ENUMERATION, dns.rdatatype.PTR), MDNS, 0.0)
    assert a.datagrams_to_send() == []  # nothing registered: nothing to enumerate
    a.register(record("n1"), 60, now=0.0)
    a.datagrams_to_send()
    a.receive_datagram(query(SERVICE_ENUMERATION, dns.rdatatype.PTR, msg_id=1), MDNS, 1.0)
    (answer,) = a.datagrams_to_send()
    (rr,) = parse_datagram(answer.data).answer
    assert rr.name == SERVICE_ENUMERATION and rr[0].target == SERVICE_TYPE


def test_legacy_queries_get_a_unicast_answer() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), 60, now=0.0)
    a.datagrams_to_send()
    a.receive_datagram(query(SERVICE_TYPE, dns.rdatatype.PTR, msg_id=4242), LEGACY, 1.0)
    (answer,) = a.datagrams_to_send()
    msg = parse_datagram(answer.data)
    assert answer.destination == LEGACY
    assert msg.id == 4242 and msg.question[0].name == SERVICE_TYPE
    assert ttls(answer) == {LEGACY_TTL}
    assert not answer.data[msg_offset_of_class(answer.data)] & 0x80  # no cache-flush bits


def msg_offset_of_class(wire: bytes) -> int:
    return wire.index(b"\x00\x21") + 2  # the first SRV record's class field


def test_responses_from_other_ports_are_ignored(pair: tuple[MdnsCore, MdnsCore]) -> None:
    a, b = pair
    a.register(record("n1"), 60, now=0.0)
    deliver(a, b, now=0.0, source=LEGACY)
    assert b.services(0.0) == []


def test_the_cache_is_bounded() -> None:
    a, b = MdnsCore("site"), MdnsCore("site", max_cached=1)
    a.register(record("n1", "n2"), 60, now=0.0)
    deliver(a, b, now=0.0)
    assert len(b.services(0.0)[0].nodes) == 1
    assert b.statistics().cache_full_drops == 1


@pytest.mark.parametrize("ttl", [0, -1, math.inf, math.nan])
def test_ttl_must_be_positive(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        MdnsCore().register(record("n1"), ttl, now=0.0)


def test_own_announcements_heard_back_change_nothing() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), 60, now=0.0)
    deliver(a, a, now=0.0)
    a.deregister(record("n1"), now=1.0)
    deliver(a, a, now=1.0)
    assert a.services(1.0) == [] and a.statistics().cached == 0
    assert events(a) == [("create", ("n1",)), ("delete", ())]


def test_messages_are_standard_mdns() -> None:
    a = MdnsCore("site")
    a.register(record("n1"), 60, now=0.0)
    msg = parse_datagram(a.datagrams_to_send()[0].data)
    assert msg.id == 0 and msg.flags == dns.flags.QR | dns.flags.AA and not msg.question
