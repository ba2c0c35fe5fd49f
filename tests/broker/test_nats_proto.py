"""The sans-io NATS core: every split of the stream parses the same; bad input is a protocol
error; limits hold before buffering; keepalive timing is exact."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.broker._nats_proto import (
    Msg,
    NatsProtocol,
    NatsProtocolError,
    Ping,
    Pong,
    ServerInfo,
    StaleConnection,
)

STREAM = (
    b'INFO {"server_id":"x","max_payload":1048576}\r\n'
    b"MSG events 1 5\r\nhello\r\n"
    b"PING\r\n"
    b"HMSG events 2 reply.to 31 34\r\nNATS/1.0\r\nContent-Type: a/b\r\n\r\nabc\r\n"
    b"MSG empty 3 0\r\n\r\n"
    b"PONG\r\n+OK\r\n-ERR 'Unknown Protocol Operation'\r\n"
)


def events_of(chunks: list[bytes]) -> list[object]:
    proto = NatsProtocol()
    out = []
    for chunk in chunks:
        proto.receive_data(chunk)
        while (event := proto.next_event()) is not None:
            out.append(event)
    return out


EXPECTED = events_of([STREAM])


def test_whole_stream_parses() -> None:
    assert EXPECTED[1] == Msg("events", 1, None, None, b"hello")
    assert EXPECTED[3] == Msg("events", 2, "reply.to", {"Content-Type": ["a/b"]}, b"abc")
    assert isinstance(EXPECTED[0], ServerInfo) and isinstance(EXPECTED[2], Ping)
    assert len(EXPECTED) == 8


def test_every_split_point_parses_the_same() -> None:
    for at in range(1, len(STREAM)):
        assert events_of([STREAM[:at], STREAM[at:]]) == EXPECTED


@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=12))
def test_random_chunkings_parse_the_same(cuts: list[int]) -> None:
    points = [0, *sorted(set(cuts)), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert events_of(chunks) == EXPECTED


@given(st.binary(max_size=300))
def test_garbage_is_only_ever_a_protocol_error(data: bytes) -> None:
    try:
        events_of([data])
    except NatsProtocolError:
        pass


def test_control_line_is_bounded_before_buffering() -> None:
    proto = NatsProtocol()
    with pytest.raises(NatsProtocolError, match="control line longer"):
        proto.receive_data(b"MSG " + b"x" * 5000)


def test_oversize_message_is_refused_from_its_header() -> None:
    proto = NatsProtocol()
    proto.receive_data(b'INFO {"max_payload":1024}\r\n')
    with pytest.raises(NatsProtocolError, match="exceeds"):
        proto.receive_data(b"MSG big 1 999999999\r\n")


def test_publish_honours_max_payload_and_validates_subjects() -> None:
    proto = NatsProtocol()
    proto.receive_data(b'INFO {"max_payload":10}\r\n')
    with pytest.raises(NatsProtocolError, match="exceeds the server's max_payload 10"):
        proto.publish("a.b", b"x" * 11)
    for bad in ("", "a b", "a..b", "a.*"):
        with pytest.raises(NatsProtocolError):
            proto.publish(bad, b"")
    proto.publish("a.b", b"hi", headers={"X-Trace": "1"})
    assert proto.data_to_send() == b"HPUB a.b 24 26\r\nNATS/1.0\r\nX-Trace: 1\r\n\r\nhi\r\n"


def test_keepalive_pings_then_goes_stale_at_exact_times() -> None:
    proto = NatsProtocol(ping_interval=10, max_pings_out=2)
    proto.start_timer(0.0)
    assert proto.get_timer() == 10.0
    proto.handle_timer(10.0)
    assert proto.data_to_send() == b"PING\r\n" and proto.get_timer() == 20.0
    proto.receive_data(b"PONG\r\n")
    assert isinstance(proto.next_event(), Pong) and proto.pings_out == 0
    for now in (20.0, 30.0):
        proto.handle_timer(now)
    assert proto.pings_out == 2
    proto.handle_timer(40.0)
    assert isinstance(proto.next_event(), StaleConnection)


def test_sans_io_core_imports_no_io() -> None:
    path = Path(__file__).parents[2] / "src" / "trimicro" / "broker" / "_nats_proto.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    assert not names & {"trio", "socket", "time", "random", "asyncio", "threading"}
