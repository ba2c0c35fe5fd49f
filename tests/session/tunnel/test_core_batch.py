"""Batches: consecutive session messages in one link frame (`pack`, strict `decode`), the
`connect` capability that enables them, and order across batches."""

from __future__ import annotations

from typing import Any

import pytest

from trimicro.codec import cbor_dumps, cbor_loads
from trimicro.session.tunnel._events import LinkDown, SessionData
from trimicro.session.tunnel._messages import (
    MAX_BATCH,
    MAX_BATCH_BYTES,
    Batch,
    Data,
    MalformedMessage,
    Mode,
    decode,
    encode,
    pack,
)

from ._sim import Sim


def _data(sid: int, payload: bytes, *, mine: bool = True, channel: str = "c") -> dict[str, Any]:
    return encode(Data(channel, sid, mine, Mode.UNICAST, payload))


def _unpack(frames: list[dict[str, Any]]) -> list[tuple[int, bool, bytes]]:
    """Frames → (sid, mine, data) of every session message, in order."""
    out: list[tuple[int, bool, bytes]] = []
    for frame in frames:
        message = decode(cbor_loads(cbor_dumps(frame)))
        if isinstance(message, Data):
            out.append((message.sid, message.mine, message.data))
        elif isinstance(message, Batch):
            out += [(sid, mine, d) for _, sid, mine, _, ds in message.runs for d in ds]
    return out


def test_pack_merges_consecutive_session_messages_in_order() -> None:
    keepalive = {"v": 1, "t": "keepalive", "seq": 1, "echo": False}
    messages = [_data(1, b"a"), _data(1, b"b"), _data(2, b"c"), _data(1, b"d", mine=False),
                keepalive, _data(1, b"e")]  # fmt: skip
    frames = pack(messages)
    assert [f["t"] for f in frames] == ["batch", "keepalive", "session"]  # a lone one stays
    assert frames[0]["runs"] == [["c", 1, True, 0, [b"a", b"b"]], ["c", 2, True, 0, [b"c"]],
                                 ["c", 1, False, 0, [b"d"]]]  # fmt: skip
    assert _unpack(frames) == _unpack(messages)


def test_pack_keeps_batches_within_their_caps() -> None:
    many = [_data(1, i.to_bytes(4, "big")) for i in range(MAX_BATCH + 5)]
    frames = pack(many)
    assert [len(f["runs"][0][4]) for f in frames] == [MAX_BATCH, 5]
    assert _unpack(frames) == _unpack(many)
    big = b"x" * (MAX_BATCH_BYTES // 2 + 1)
    huge = b"y" * (MAX_BATCH_BYTES + 1)  # alone, as a session message
    frames = pack([_data(1, big), _data(1, big), _data(1, huge), _data(1, b"z")])
    assert [f["t"] for f in frames] == ["session", "session", "session", "session"]


@pytest.mark.parametrize(
    ("runs", "problem"),
    [
        (None, "runs"),
        ([], "runs"),
        ([["c", 1, True, 0]], "a run is not"),
        (["c"], "a run is not"),
        ([["c", -1, True, 0, [b"x"]]], "sid"),
        ([["c", 1, 1, 0, [b"x"]]], "mine"),
        ([["c", 1, True, 7, [b"x"]]], "mode"),
        ([["c" * 257, 1, True, 0, [b"x"]]], "channel"),
        ([["c", 1, True, 0, []]], "payloads"),
        ([["c", 1, True, 0, b"x"]], "payloads"),
        ([["c", 1, True, 0, ["text"]]], "data"),
        ([["c", 1, True, 0, [b""] * (MAX_BATCH + 1)]], f"more than {MAX_BATCH} messages"),
        ([["c", 1, True, 0, [b""]]] * (MAX_BATCH + 1), f"more than {MAX_BATCH} runs"),
        ([["c", 1, True, 0, [b"x" * (MAX_BATCH_BYTES // 2 + 1)] * 2]], "bytes of data"),
    ],
)
def test_a_batch_is_decoded_strictly(runs: Any, problem: str) -> None:
    with pytest.raises(MalformedMessage, match=problem):
        decode({"v": 1, "t": "batch", "runs": runs})


def _pair() -> Sim:
    sim = Sim()
    sim.add("a")
    sim.add("b").listen("svc", 0.0)
    sim.connect("a", "b")
    sim.run_until(1.0)
    return sim


def test_order_is_kept_across_batches() -> None:
    sim = _pair()
    a = sim.cores["a"]
    key = a.dial("svc", Mode.UNICAST, 1.0)
    sim.run_until(2.0)
    sent = [i.to_bytes(4, "big") for i in range(3000)]
    frames_before = sim.frames
    for start in range(0, len(sent), 700):  # bursts of 700: batches of at most 1024
        for data in sent[start : start + 700]:
            a.send(key, data, sim.now)
        sim.run_for(0.001)
    sim.run_for(1.0)
    got = [e.data for _, e in sim.of("b", SessionData)]
    assert got == sent
    assert sim.frames - frames_before < 20  # batches, not 3000 frames
    sim.check()


def test_a_malformed_batch_closes_only_its_link() -> None:
    sim = Sim()
    for name in "abc":
        sim.add(name)
    wire_ab = sim.connect("a", "b")
    sim.connect("a", "c")
    sim.run_until(1.0)
    bad = {"v": 1, "t": "batch", "runs": [["c", 1, True, 0, [b""] * (MAX_BATCH + 1)]]}
    sim.cores["a"].receive(wire_ab.a_link, bad, 1.0)
    sim.run_until(2.0)
    (down,) = [e for _, e in sim.of("a", LinkDown)]
    assert down.link == wire_ab.a_link and "malformed message" in down.reason
    assert sim.cores["a"].links_up() == ["a>c#2"]


def test_a_peer_without_batches_gets_single_session_messages() -> None:
    sim = Sim()
    core = sim.add("a")
    core.link_opened("x", dialled=False, nonce=b"n" * 16, now=0.0)
    # A connect from before batches: no "batch" field.
    core.receive("x", {"v": 1, "t": "connect", "id": "old", "nonce": b"m" * 16, "auth": False}, 0)
    assert core.link("x").peer_batch is False  # type: ignore[union-attr]
    messages = [_data(1, b"a"), _data(1, b"b")]
    assert core.pack("x", messages) == messages
    # ... and its single session messages are still understood.
    core.listen("svc", 0.0)
    core.receive("x", encode(Data("svc", 5, True, Mode.MULTICAST, b"hi")), 0.1)
    assert [e.data for e in iter(core.next_event, None) if isinstance(e, SessionData)] == [b"hi"]
    sent_connect = next(m for link, m in core.messages_to_send() if m["t"] == "connect")
    assert sent_connect["batch"] is True  # we say we take batches
