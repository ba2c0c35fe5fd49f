"""A sans-io NATS client protocol core (https://docs.nats.io/reference/reference-protocols).

Why our own: the existing Python NATS clients are asyncio-only, and trimicro is trio all the
way down. This module does no I/O: feed it bytes with `receive_data`, take events with
`next_event`, and send what `data_to_send` returns (the shape of h11 and aioquic). Any split of
the byte stream parses the same. Control lines and payloads are bounded *before* buffering:
a control line longer than `MAX_CONTROL_LINE`, or a payload over the server's `max_payload`
(plus header room), is a `NatsProtocolError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "MAX_CONTROL_LINE",
    "Err",
    "Msg",
    "NatsProtocol",
    "NatsProtocolError",
    "Ok",
    "Ping",
    "Pong",
    "ServerInfo",
    "StaleConnection",
    "validate_subject",
]

MAX_CONTROL_LINE = 4096
MAX_HEADER_SIZE = 64 * 1024
DEFAULT_MAX_PAYLOAD = 1024 * 1024
_SUBJECT = re.compile(r"^[^\s.]+(\.[^\s.]+)*$")
_TOKEN = re.compile(r"^[^\s]+$")


class NatsProtocolError(Exception):
    """The peer broke the protocol, or a command was invalid; the message says how."""


@attrs.frozen
class ServerInfo:
    info: dict[str, Any]


@attrs.frozen
class Msg:
    subject: str
    sid: int
    reply: str | None
    headers: dict[str, list[str]] | None
    payload: bytes


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class Pong:
    pass


@attrs.frozen
class Ok:
    pass


@attrs.frozen
class Err:
    message: str


@attrs.frozen
class StaleConnection:
    """More PINGs went unanswered than allowed: the connection is dead."""


Event = ServerInfo | Msg | Ping | Pong | Ok | Err | StaleConnection


def validate_subject(subject: str, *, wildcards: bool = False) -> str:
    if not _SUBJECT.match(subject) or (not wildcards and any(c in subject for c in "*>")):
        raise NatsProtocolError(f"invalid subject {subject!r}")
    return subject


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    lines = ["NATS/1.0"]
    for key, value in headers.items():
        if not _TOKEN.match(key) or ":" in key or "\r" in value or "\n" in value:
            raise NatsProtocolError(f"invalid header {key!r}")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _decode_headers(block: bytes) -> dict[str, list[str]]:
    try:
        text = block.decode()
    except UnicodeDecodeError:
        raise NatsProtocolError("headers are not UTF-8") from None
    lines = text.split("\r\n")
    if not lines[0].startswith("NATS/1.0"):
        raise NatsProtocolError("headers do not start with NATS/1.0")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise NatsProtocolError(f"malformed header line {line[:40]!r}")
        headers.setdefault(key.strip(), []).append(value.strip())
    return headers


class NatsProtocol:
    """One NATS client connection's protocol state (no I/O)."""

    def __init__(self, *, ping_interval: float = 120.0, max_pings_out: int = 2) -> None:
        self._in = bytearray()
        self._out = bytearray()
        self._events: list[Event] = []
        self._pending_msg: tuple[str, int, str | None, int, int] | None = None
        self.max_payload = DEFAULT_MAX_PAYLOAD
        self.info: dict[str, Any] = {}
        self.ping_interval = ping_interval
        self.max_pings_out = max_pings_out
        self.pings_out = 0
        self._next_ping: float | None = None
        self.closed = False

    # -- inbound ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray) -> None:
        if not data:
            self.closed = True
            return
        self._in += data
        while self._parse_one():
            pass

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def _parse_one(self) -> bool:
        if self._pending_msg is not None:
            return self._take_payload()
        end = self._in.find(b"\r\n")
        if end < 0:
            if len(self._in) > MAX_CONTROL_LINE:
                raise NatsProtocolError(f"control line longer than {MAX_CONTROL_LINE} bytes")
            return False
        if end > MAX_CONTROL_LINE:
            raise NatsProtocolError(f"control line longer than {MAX_CONTROL_LINE} bytes")
        line = bytes(self._in[:end])
        del self._in[: end + 2]
        self._control(line)
        return True

    def _control(self, line: bytes) -> None:
        try:
            text = line.decode()
        except UnicodeDecodeError:
            raise NatsProtocolError("control line is not UTF-8") from None
        op, _, rest = text.partition(" ")
        op = op.upper()
        simple: dict[str, Event] = {"PING": Ping(), "PONG": Pong(), "+OK": Ok()}
        if op in simple:
            if op == "PONG":
                self.pings_out = 0
            self._events.append(simple[op])
        elif op == "INFO":
            self._info(rest)
        elif op == "-ERR":
            self._events.append(Err(rest.strip().strip("'")))
        elif op in ("MSG", "HMSG"):
            self._msg_header(op, rest.split())
        else:
            raise NatsProtocolError(f"unknown operation {op[:20]!r}")

    def _info(self, rest: str) -> None:
        try:
            info = json.loads(rest)
        except ValueError:
            raise NatsProtocolError("INFO is not JSON") from None
        if not isinstance(info, dict):
            raise NatsProtocolError("INFO is not a JSON object")
        self.info = info
        payload = info.get("max_payload")
        if isinstance(payload, int) and payload > 0:
            self.max_payload = payload
        self._events.append(ServerInfo(info))

    def _msg_header(self, op: str, args: list[str]) -> None:
        with_headers = op == "HMSG"
        counts = 2 if with_headers else 1
        if len(args) not in (2 + counts, 3 + counts):
            raise NatsProtocolError(f"malformed {op} line")
        subject, sid_text = args[0], args[1]
        reply = args[2] if len(args) == 3 + counts else None
        numbers = args[-counts:]
        if not sid_text.isdigit() or not all(n.isdigit() for n in numbers):
            raise NatsProtocolError(f"malformed {op} line")
        total = int(numbers[-1])
        header_size = int(numbers[0]) if with_headers else 0
        if total > self.max_payload + MAX_HEADER_SIZE or header_size > min(total, MAX_HEADER_SIZE):
            raise NatsProtocolError(f"{op} of {total} bytes exceeds the limits")
        self._pending_msg = (subject, int(sid_text), reply, header_size, total)

    def _take_payload(self) -> bool:
        assert self._pending_msg is not None
        subject, sid, reply, header_size, total = self._pending_msg
        if len(self._in) < total + 2:
            return False
        if self._in[total : total + 2] != b"\r\n":
            raise NatsProtocolError("payload not followed by CRLF")
        block = bytes(self._in[:total])
        del self._in[: total + 2]
        self._pending_msg = None
        headers = _decode_headers(block[:header_size]) if header_size else None
        self._events.append(Msg(subject, sid, reply, headers, block[header_size:]))
        return True

    # -- outbound --------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def connect(self, options: Mapping[str, Any]) -> None:
        self._out += b"CONNECT " + json.dumps(dict(options)).encode() + b"\r\n"

    def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        reply: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        validate_subject(subject)
        if len(payload) > self.max_payload:
            raise NatsProtocolError(
                f"payload of {len(payload)} bytes exceeds the server's max_payload "
                f"{self.max_payload}"
            )
        target = f"{subject} {reply}" if reply else subject
        if headers:
            block = _encode_headers(headers)
            line = f"HPUB {target} {len(block)} {len(block) + len(payload)}\r\n"
            self._out += line.encode() + block + payload + b"\r\n"
        else:
            self._out += f"PUB {target} {len(payload)}\r\n".encode() + payload + b"\r\n"

    def subscribe(self, subject: str, sid: int, queue: str | None = None) -> None:
        validate_subject(subject, wildcards=True)
        if queue is not None and not _TOKEN.match(queue):
            raise NatsProtocolError(f"invalid queue group {queue!r}")
        middle = f" {queue}" if queue else ""
        self._out += f"SUB {subject}{middle} {sid}\r\n".encode()

    def unsubscribe(self, sid: int, max_msgs: int | None = None) -> None:
        tail = f" {max_msgs}" if max_msgs is not None else ""
        self._out += f"UNSUB {sid}{tail}\r\n".encode()

    def ping(self) -> None:
        self._out += b"PING\r\n"

    def pong(self) -> None:
        self._out += b"PONG\r\n"

    # -- keepalive timer -------------------------------------------------------------------

    def start_timer(self, now: float) -> None:
        self._next_ping = now + self.ping_interval

    def get_timer(self) -> float | None:
        return self._next_ping

    def handle_timer(self, now: float) -> None:
        """Send a keepalive PING; too many unanswered ones make the connection stale."""
        if self._next_ping is None or now < self._next_ping:
            return
        if self.pings_out >= self.max_pings_out:
            self._events.append(StaleConnection())
            self._next_ping = None
            return
        self.pings_out += 1
        self.ping()
        self._next_ping = now + self.ping_interval
