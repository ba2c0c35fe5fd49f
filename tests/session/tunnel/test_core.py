"""The sans-io tunnel core, driven by a discrete-event simulator with exact times."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from trimicro.codec import cbor_dumps
from trimicro.session.tunnel._core import SessionGone
from trimicro.session.tunnel._events import (
    LOOPBACK,
    DialFailed,
    LinkDown,
    LinkUp,
    SessionAccepted,
    SessionClosed,
    SessionData,
    SessionKey,
    SessionOpened,
)
from trimicro.session.tunnel._messages import Mode

from ._sim import Sim

SRC = Path(__file__).resolve().parents[3] / "src" / "trimicro" / "session" / "tunnel"
SANS_IO = ["_core.py", "_messages.py", "_link.py", "_events.py", "_auth.py"]
FORBIDDEN = {"trio", "socket", "time", "random", "asyncio", "threading", "secrets"}


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_import_no_io(module: str) -> None:
    imported = set()
    for node in ast.walk(ast.parse((SRC / module).read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


def _pair(token_a: str | None = None, token_b: str | None = None, delay: float = 0.01) -> Sim:
    sim = Sim()
    sim.add("a", token=token_a)
    sim.add("b", token=token_b)
    sim.connect("a", "b", delay=delay, fp="b" * 64)
    return sim


# --- links ---------------------------------------------------------------------------------


def test_link_comes_up_and_measures_rtt() -> None:
    sim = _pair(delay=0.01)
    sim.run_until(1.0)
    assert [e for _, e in sim.of("a", LinkUp)] == [LinkUp("a>b#1", "b")]
    assert [t for t, _ in sim.of("b", LinkUp)] == [pytest.approx(0.01)]
    (link,) = sim.cores["a"].statistics().links
    assert link.state == "connected"
    assert link.rtt == pytest.approx(0.02)  # the first probe, echoed


def test_token_auth_brings_the_link_up_and_never_sends_the_token() -> None:
    sim = _pair("s3cret-token", "s3cret-token")
    sim.run_until(1.0)
    assert sim.of("a", LinkUp) and sim.of("b", LinkUp)
    assert not any(b"s3cret" in cbor_dumps(m) for _, _, _, m in sim.sent)
    # Both proofs were sent, and they differ (the role is bound in).
    proofs = [m["proof"] for _, _, _, m in sim.sent if m["t"] == "auth"]
    assert len(proofs) == 2 and proofs[0] != proofs[1]


@pytest.mark.parametrize(
    ("token_a", "token_b", "reason"),
    [
        ("right", "wrong", "network token mismatch"),
        (None, "needed", "peer has no network token"),
        ("mine", None, "peer requires a network token"),
    ],
)
def test_wrong_or_missing_token_closes_the_link(token_a, token_b, reason) -> None:
    sim = _pair(token_a, token_b)
    sim.run_until(1.0)
    downs = sim.of("a", LinkDown) + sim.of("b", LinkDown)
    assert any(reason in e.reason for _, e in downs), downs
    assert not sim.of("a", LinkUp) and not sim.of("b", LinkUp)
    assert sim.cores["a"].statistics().links == () == sim.cores["b"].statistics().links


def test_a_different_certificate_on_either_side_fails_the_proof() -> None:
    sim = Sim()
    sim.add("a", token="t")
    sim.add("b", token="t")
    wire = sim.connect("a", "b", fp="1" * 64)
    # b presents another certificate than the one a saw (a TLS-terminating relay).
    b_link = sim.cores["b"].link(wire.b_link)
    assert b_link is not None
    b_link.local_fp = "2" * 64
    sim.run_until(1.0)
    assert any("mismatch" in e.reason for _, e in sim.of("a", LinkDown) + sim.of("b", LinkDown))


def test_messages_before_the_link_is_up_close_it() -> None:
    sim = Sim()
    core = sim.add("a")
    core.link_opened("x", dialled=False, nonce=b"n" * 16, now=0.0)
    core.receive("x", {"v": 1, "t": "open", "channel": "c", "sid": 1}, 0.0)
    (down,) = [e for e in iter(core.next_event, None) if isinstance(e, LinkDown)]
    assert "before the link was up" in down.reason


def test_a_malformed_message_closes_only_its_link() -> None:
    sim = Sim()
    for name in "abc":
        sim.add(name)
    wire_ab = sim.connect("a", "b")
    sim.connect("a", "c")
    sim.run_until(1.0)
    sim.cores["a"].receive(wire_ab.a_link, {"v": 1, "t": "open", "sid": "x"}, 1.0)
    sim.run_until(2.0)
    (down,) = [e for _, e in sim.of("a", LinkDown)]
    assert down.link == wire_ab.a_link and "malformed message" in down.reason
    assert sim.cores["a"].links_up() == ["a>c#2"]
    assert sim.cores["a"].statistics().malformed == 1


def test_a_silent_peer_is_dropped_within_three_keepalive_intervals() -> None:
    sim = _pair()
    sim.run_until(100.0)
    wire = sim.wires[("a", "a>b#1")]
    wire.silent = True  # b's process hangs: nothing more arrives, nothing closes
    sim.run_until(400.0)
    ((when, down),) = sim.of("a", LinkDown)
    # b's last message was its echo of a's probe sent at 90.01 (arriving at 90.03).
    assert when == pytest.approx(90.03 + 75.0)
    assert when - 100.0 <= 3 * 30.0
    assert "keepalive" in down.reason


def test_keepalives_and_discovers_follow_their_intervals() -> None:
    sim = _pair()
    sim.run_until(125.0)
    sent = [(t, m["t"]) for t, who, _, m in sim.sent if who == "a" and not m.get("echo")]
    keepalives = [t for t, kind in sent if kind == "keepalive"]
    discovers = [t for t, kind in sent if kind == "discover"]
    assert keepalives == pytest.approx([0.01, 30.01, 60.01, 90.01, 120.01])
    assert discovers == pytest.approx([0.01, 60.01, 120.01])


# --- channels and unicast ------------------------------------------------------------------


def test_discovery_of_a_channel_on_a_peer_opens_the_session() -> None:
    sim = _pair()
    sim.run_until(1.0)
    # Only answers to a discover get through: a must find the channel itself.
    sim.filter = lambda who, link, m: not (m["t"] == "announce" and m["sid"] is None)
    sim.cores["b"].listen("svc", sim.now)
    key = sim.cores["a"].dial("svc", Mode.UNICAST, sim.now)
    sim.run_until(2.0)
    # discover 1.00 → 1.01, announce → 1.02, open → 1.03, accept → 1.04
    assert sim.of("a", SessionOpened) == [(pytest.approx(1.04), SessionOpened(key))]
    ((_, accepted),) = sim.of("b", SessionAccepted)
    assert accepted.channel == "svc" and accepted.key == SessionKey("b<a#1", key.sid)
    sim.cores["a"].send(key, b"ping", sim.now)
    sim.run_for(1.0)
    assert [e.data for _, e in sim.of("b", SessionData)] == [b"ping"]
    sim.cores["b"].send(accepted.key, b"pong", sim.now)
    sim.run_for(1.0)
    assert [e.data for _, e in sim.of("a", SessionData)] == [b"pong"]
    sim.check()


def test_a_dial_nobody_answers_fails_at_the_dial_timeout() -> None:
    sim = _pair()
    sim.run_until(1.0)
    key = sim.cores["a"].dial("nobody", Mode.UNICAST, sim.now, timeout=5.0)
    sim.run_until(10.0)
    ((when, failed),) = sim.of("a", DialFailed)
    assert when == pytest.approx(6.0) and failed.key == key
    sim.check()


def test_unicast_prefers_the_lower_rtt_link_and_fails_over() -> None:
    sim = Sim()
    for name in "abc":
        sim.add(name)
    slow = sim.connect("a", "b", delay=0.05)
    fast = sim.connect("a", "c", delay=0.01)
    sim.cores["b"].listen("svc", 0.0)
    sim.cores["c"].listen("svc", 0.0)
    sim.run_until(1.0)
    rtts = {link.id: link.rtt for link in sim.cores["a"].statistics().links}
    assert rtts == {slow.a_link: pytest.approx(0.1), fast.a_link: pytest.approx(0.02)}
    first = sim.cores["a"].dial("svc", Mode.UNICAST, sim.now)
    sim.run_for(1.0)
    assert sim.cores["a"].session_link(first) == fast.a_link
    sim.cut(fast)
    assert (sim.now, SessionClosed(first, "link down: connection broke", broken=True)) in sim.of(
        "a", SessionClosed
    )
    second = sim.cores["a"].dial("svc", Mode.UNICAST, sim.now)
    sim.run_for(1.0)
    assert sim.cores["a"].session_link(second) == slow.a_link
    assert SessionOpened(second) in [e for _, e in sim.of("a", SessionOpened)]
    sim.check()


def test_an_opening_session_moves_to_another_link_when_its_link_dies() -> None:
    sim = Sim()
    for name in "abc":
        sim.add(name)
    sim.connect("a", "b", delay=0.5)
    fast = sim.connect("a", "c", delay=0.01)
    sim.cores["b"].listen("svc", 0.0)
    sim.cores["c"].listen("svc", 0.0)
    sim.run_until(2.0)
    key = sim.cores["a"].dial("svc", Mode.UNICAST, sim.now)
    sim.run_for(0.005)  # the open is on its way to c
    sim.cut(fast)
    sim.run_for(2.0)
    assert [e for _, e in sim.of("a", SessionOpened)] == [SessionOpened(key)]
    assert sim.cores["a"].session_link(key) == "a>b#1"


def test_channel_mappings_expire_two_minutes_after_the_last_announce() -> None:
    sim = _pair()
    sim.cores["b"].listen("svc", 0.0)
    sim.run_until(50.0)
    assert sim.cores["a"].channels_of("a>b#1") == {"svc"}
    # From now on b's announces are lost (b still answers keepalives).
    sim.filter = lambda who, link, m: not (who == "b" and m["t"] == "announce")
    last_announce = 30.0 + 0.01  # b announces at 0, 30, 60 ...; the 30 s one arrived
    sim.run_until(last_announce + 120.0 - 0.001)
    assert sim.cores["a"].channels_of("a>b#1") == {"svc"}
    sim.run_until(last_announce + 120.0)
    assert sim.cores["a"].channels_of("a>b#1") == set()


def test_unlisten_withdraws_the_channel_at_once() -> None:
    sim = _pair()
    sim.cores["b"].listen("svc", 0.0)
    sim.run_until(1.0)
    sim.cores["b"].unlisten("svc", sim.now)
    sim.run_for(1.0)
    assert sim.cores["a"].channels_of("a>b#1") == set()


def test_open_without_a_listener_is_refused() -> None:
    sim = _pair()
    sim.cores["b"].listen("svc", 0.0)
    sim.run_until(1.0)
    sim.cores["b"]._listening.discard("svc")  # b stopped listening; a's mapping is stale
    key = sim.cores["a"].dial("svc", Mode.UNICAST, sim.now)
    sim.run_for(1.0)
    ((_, failed),) = sim.of("a", DialFailed)
    assert failed.key == key and "no listener" in failed.reason


def test_loopback_dial_reaches_the_local_listener() -> None:
    sim = Sim()
    core = sim.add("a")
    core.listen("svc", 0.0)
    key = core.dial("svc", Mode.UNICAST, 0.0)
    sim.flush()
    accepted = SessionKey(LOOPBACK, key.sid)
    assert [e for _, e in sim.events["a"]] == [
        SessionAccepted(accepted, "svc", Mode.UNICAST),
        SessionOpened(key),
    ]
    core.send(key, b"x", 0.0)
    core.send(accepted, b"y", 0.0)
    core.close_session(key, 0.0)
    sim.flush()
    assert [e for _, e in sim.events["a"]][2:] == [
        SessionData(accepted, b"x"),
        SessionData(key, b"y"),
        SessionClosed(accepted, "closed by peer: closed"),
    ]
    with pytest.raises(SessionGone):
        core.send(accepted, b"late", 0.0)
    sim.check()


# --- multicast and broadcast ---------------------------------------------------------------


def _star() -> Sim:
    sim = Sim()
    for name in "abcd":
        sim.add(name)
    for name in "bcd":
        sim.connect("a", name)
    sim.cores["b"].listen("topic", 0.0)
    sim.cores["c"].listen("topic", 0.0)
    sim.cores["d"].listen("other", 0.0)
    sim.run_until(1.0)
    return sim


def test_multicast_reaches_exactly_the_announcing_links() -> None:
    sim = _star()
    key = sim.cores["a"].dial("topic", Mode.MULTICAST, sim.now)
    assert sorted(sim.cores["a"].send(key, b"m1", sim.now)) == ["a>b#1", "a>c#2"]
    sim.run_for(1.0)
    for name in "bc":
        assert [e.data for _, e in sim.of(name, SessionData)] == [b"m1"]
    assert not sim.of("d", SessionData) and not sim.of("d", SessionAccepted)
    assert not [m for _, who, link, m in sim.sent if link == "a>d#3" and m["t"] == "session"]
    sim.cores["a"].close_session(key, sim.now)
    sim.run_for(1.0)
    assert len(sim.of("b", SessionClosed)) == 1 == len(sim.of("c", SessionClosed))
    sim.check()


def test_broadcast_reaches_every_link_and_only_listeners_deliver() -> None:
    sim = _star()
    key = sim.cores["a"].dial("topic", Mode.BROADCAST, sim.now)
    assert sorted(sim.cores["a"].send(key, b"all", sim.now)) == ["a>b#1", "a>c#2", "a>d#3"]
    sim.run_for(1.0)
    assert [len(sim.of(name, SessionData)) for name in "bcd"] == [1, 1, 0]
    assert sim.cores["d"].statistics().data_dropped == 1


def test_a_multicast_receiver_may_answer_on_its_link() -> None:
    sim = _star()
    key = sim.cores["a"].dial("topic", Mode.MULTICAST, sim.now)
    sim.cores["a"].send(key, b"q", sim.now)
    sim.run_for(1.0)
    ((_, accepted),) = sim.of("b", SessionAccepted)
    sim.cores["b"].send(accepted.key, b"answer", sim.now)
    sim.run_for(1.0)
    assert [e for _, e in sim.of("a", SessionData)] == [SessionData(key, b"answer")]


# --- limits --------------------------------------------------------------------------------


def test_sessions_per_link_are_capped() -> None:
    sim = Sim()
    sim.add("a")
    sim.add("b", max_sessions_per_link=3)
    sim.connect("a", "b")
    sim.cores["b"].listen("svc", 0.0)
    sim.run_until(1.0)
    keys = [sim.cores["a"].dial("svc", Mode.UNICAST, sim.now) for _ in range(5)]
    sim.run_for(1.0)
    assert len(sim.of("a", SessionOpened)) == 3
    assert {e.key for _, e in sim.of("a", DialFailed)} == set(keys[3:])
    assert sim.cores["b"].statistics().sessions_refused == 2
    sim.check()


def test_channels_announced_per_link_are_capped() -> None:
    sim = Sim()
    sim.add("a", max_channels_per_link=100)
    sim.add("b")
    sim.connect("a", "b")
    for i in range(1000):
        sim.cores["b"].listen(f"ch-{i}", 0.0)
    sim.run_until(1.0)
    stats = sim.cores["a"].statistics()
    assert stats.links[0].channels == 100
    assert stats.channels_refused >= 900


# --- no leaks ------------------------------------------------------------------------------


def test_no_session_leaks_after_10000_open_close_cycles() -> None:
    sim = _pair()
    sim.cores["b"].listen("svc", 0.0)
    sim.run_until(1.0)
    a, b = sim.cores["a"], sim.cores["b"]
    for i in range(10_000):
        key = a.dial("svc", Mode.UNICAST, sim.now)
        sim.run_for(0.05)
        a.send(key, b"x", sim.now)
        if i % 2:
            a.close_session(key, sim.now)
        else:  # the acceptor closes half of them
            b.close_session(SessionKey("b<a#1", key.sid), sim.now)
        sim.run_for(0.05)
        for name in "ab":
            sim.events[name].clear()
    sim.check()
    for core in (a, b):
        stats = core.statistics()
        assert (stats.sessions_dialled, stats.sessions_accepted) == (0, 0)
        assert stats.links[0].sessions == 0
    assert a.statistics().dials == 10_000 and a.statistics().dials_failed == 0
