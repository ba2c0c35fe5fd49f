"""Tunnel messages on the wire (sans-io): one CBOR map each, with a version field.

    {"v": 1, "t": "connect", "id": text, "nonce": bytes, "auth": bool, "batch": bool}
    {"v": 1, "t": "auth", "proof": bytes(32)}
    {"v": 1, "t": "close", "reason": text, "channel": text, "sid": int | null, "mine": bool}
    {"v": 1, "t": "keepalive", "seq": int, "echo": bool}
    {"v": 1, "t": "discover", "channel": text, "sid": int | null}
    {"v": 1, "t": "announce", "channels": [text], "sid": int | null}
    {"v": 1, "t": "open", "channel": text, "sid": int}
    {"v": 1, "t": "accept", "sid": int}
    {"v": 1, "t": "session", "channel": text, "sid": int, "mine": bool, "mode": 0|1|2,
     "data": bytes}
    {"v": 1, "t": "batch", "runs": [[channel, sid, mine, mode, [data, ...]], ...]}

A `batch` carries several session messages in one link frame, in the order they were sent:
each run is consecutive messages of one session (the `session` fields, then its payloads).
It is sent only to a peer whose `connect` said `batch: true` (a peer from before batches
omits the field, gets single `session` messages and never sees a `batch`); a batch holds at
most `MAX_BATCH` messages and `MAX_BATCH_BYTES` of data, and a run at least one payload.

Session ids are numbers chosen by the side that dialled the session; `mine` says whether
the sender is that side, so each end keys sessions without any chance of collision. A close
with neither channel nor sid closes the link; with a channel only, it withdraws an announce.
Decoding is strict (codec structuring: types checked, field path named) and bounded: text,
nonces, announce lists and batches have caps; anything else is a `MalformedMessage`, which
closes only the link it came on.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from ...codec import CodecError, structure, unstructure

__all__ = [
    "MAX_ANNOUNCE",
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_CHANNEL",
    "WIRE_VERSION",
    "Accept",
    "Announce",
    "Auth",
    "Batch",
    "Close",
    "Connect",
    "Data",
    "Discover",
    "Keepalive",
    "MalformedMessage",
    "Message",
    "Mode",
    "Open",
    "decode",
    "encode",
    "pack",
]

WIRE_VERSION = 1
#: Longest channel name.
MAX_CHANNEL = 256
#: Most channels in one announce (longer lists are sent in several).
MAX_ANNOUNCE = 256
MAX_ID = 128
MAX_REASON = 512
NONCE_SIZE = 16
PROOF_SIZE = 32
MAX_SID = 2**63 - 1
#: Most session messages in one `batch`, and most bytes of session data in one (with every
#: run's own fields it stays well under a link frame's 4 MiB; a longer message goes alone).
MAX_BATCH = 1024
MAX_BATCH_BYTES = 1024 * 1024


class MalformedMessage(ValueError):
    """A message that does not follow the wire format; the text names what was wrong."""


class Mode(enum.IntEnum):
    UNICAST = 0  # one link: the best by RTT and queue delay, pinned once chosen
    MULTICAST = 1  # every link that announced the channel
    BROADCAST = 2  # every link


def _text(limit: int) -> Any:
    return attrs.validators.max_len(limit)


def _sid(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_SID:
        raise ValueError(f"{attribute.name}: out of range")


def _each_channel(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if len(value) > MAX_ANNOUNCE:
        raise ValueError(f"{attribute.name}: more than {MAX_ANNOUNCE} channels")
    if any(not c or len(c) > MAX_CHANNEL for c in value):
        raise ValueError(f"{attribute.name}: a channel is empty or over {MAX_CHANNEL} chars")


def _truncate(reason: str) -> str:
    return reason[:MAX_REASON]


@attrs.frozen
class Connect:
    id: str = attrs.field(validator=_text(MAX_ID))
    nonce: bytes = attrs.field(validator=attrs.validators.min_len(NONCE_SIZE))
    auth: bool = False
    batch: bool = False  # the sender decodes `batch` messages

    def __attrs_post_init__(self) -> None:
        if len(self.nonce) > 4 * NONCE_SIZE:
            raise ValueError("nonce: too long")


@attrs.frozen
class Auth:
    proof: bytes = attrs.field(
        validator=[attrs.validators.min_len(PROOF_SIZE), attrs.validators.max_len(PROOF_SIZE)]
    )


@attrs.frozen
class Close:
    reason: str = attrs.field(default="", converter=_truncate)
    channel: str = attrs.field(default="", validator=_text(MAX_CHANNEL))
    sid: int | None = attrs.field(default=None, validator=_sid)
    mine: bool = False


@attrs.frozen
class Keepalive:
    seq: int = attrs.field(validator=_sid)
    echo: bool = False


@attrs.frozen
class Discover:
    channel: str = attrs.field(default="", validator=_text(MAX_CHANNEL))
    sid: int | None = attrs.field(default=None, validator=_sid)


@attrs.frozen
class Announce:
    channels: tuple[str, ...] = attrs.field(validator=_each_channel)
    sid: int | None = attrs.field(default=None, validator=_sid)


@attrs.frozen
class Open:
    channel: str = attrs.field(validator=[attrs.validators.min_len(1), _text(MAX_CHANNEL)])
    sid: int = attrs.field(validator=_sid)


@attrs.frozen
class Accept:
    sid: int = attrs.field(validator=_sid)


@attrs.frozen
class Data:
    """Session data: the hot path, so no attrs validators — `decode` checks every field by
    hand (`_decode_data`), and the core builds it only from a session's checked fields."""

    channel: str
    sid: int
    mine: bool
    mode: Mode
    data: bytes = b""


#: One run of a batch: (channel, sid, mine, mode, payloads) — a session's consecutive data.
Run = tuple[str, int, bool, Mode, list[bytes]]


@attrs.frozen
class Batch:
    """Session data of several messages (built by `pack`, checked by `decode` by hand)."""

    runs: tuple[Run, ...]


Message = Connect | Auth | Close | Keepalive | Discover | Announce | Open | Accept | Data | Batch

_TYPES: dict[str, type[Any]] = {
    "connect": Connect,
    "auth": Auth,
    "close": Close,
    "keepalive": Keepalive,
    "discover": Discover,
    "announce": Announce,
    "open": Open,
    "accept": Accept,
    "session": Data,
    "batch": Batch,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def encode(message: Message) -> dict[str, Any]:
    """The message as the plain map a `Connection` sends."""
    if type(message) is Data:  # the hot path: skip cattrs
        return encode_data(message.channel, message.sid, message.mine, message.mode,
                           message.data)  # fmt: skip
    if type(message) is Batch:
        runs = [[c, s, m, int(k), list(p)] for c, s, m, k, p in message.runs]
        return {"v": WIRE_VERSION, "t": "batch", "runs": runs}
    body: dict[str, Any] = unstructure(message)
    if isinstance(message, Announce):
        body["channels"] = list(message.channels)
    return {"v": WIRE_VERSION, "t": _NAMES[type(message)], **body}


def encode_data(channel: str, sid: int, mine: bool, mode: Mode, data: bytes) -> dict[str, Any]:
    """`encode(Data(...))` without building the `Data`: a session's send, the hot path."""
    return {"v": WIRE_VERSION, "t": "session", "channel": channel, "sid": sid,
            "mine": mine, "mode": _MODE_VALUE[mode], "data": data}  # fmt: skip


def decode(raw: Any) -> Message:
    """A received map → a message; raises `MalformedMessage` naming the problem."""
    if not isinstance(raw, dict):
        raise MalformedMessage("message: expected a map")
    if raw.get("v") != WIRE_VERSION:
        raise MalformedMessage(f"v: unsupported version {raw.get('v')!r}")
    tag = raw.get("t")
    kind = _TYPES.get(tag) if isinstance(tag, str) else None  # a list key would not hash
    if kind is None:
        raise MalformedMessage(f"t: unknown message type {raw.get('t')!r}")
    if kind is Data:
        return _decode_data(raw)
    if kind is Batch:
        return _decode_batch(raw)
    body = {k: v for k, v in raw.items() if k not in ("v", "t")}
    channels = body.get("channels") if kind is Announce else None
    if isinstance(channels, list) and len(channels) > MAX_ANNOUNCE:  # before structuring
        raise MalformedMessage(f"channels: more than {MAX_ANNOUNCE} channels")
    try:
        message: Message = structure(body, kind)
    except (CodecError, ValueError, TypeError) as exc:
        raise MalformedMessage(f"{raw.get('t')}: {exc}") from None
    return message


def _decode_data(raw: dict[str, Any]) -> Data:
    return Data(*decode_session(raw))


def decode_session(raw: dict[str, Any]) -> tuple[str, int, bool, Mode, bytes]:
    """A `session` map's fields, checked by hand (the hot path; same rules as the
    structured path): what `decode` would put in a `Data`."""
    if raw.get("v") != WIRE_VERSION:
        raise MalformedMessage(f"v: unsupported version {raw.get('v')!r}")
    channel: Any = raw.get("channel")
    sid: Any = raw.get("sid")
    mine: Any = raw.get("mine")
    data = raw.get("data")
    kind = _check_session("session", channel, sid, mine, raw.get("mode"))
    if type(data) is not bytes:
        raise MalformedMessage("session: data: expected bytes")
    return channel, sid, mine, kind, data


def _check_session(where: str, channel: Any, sid: Any, mine: Any, mode: Any) -> Mode:
    if type(channel) is not str or len(channel) > MAX_CHANNEL:
        raise MalformedMessage(f"{where}: channel: expected a string of at most 256 chars")
    if type(sid) is not int or not 0 <= sid <= MAX_SID:
        raise MalformedMessage(f"{where}: sid: expected an integer in range")
    if type(mine) is not bool:
        raise MalformedMessage(f"{where}: mine: expected a boolean")
    kind = _MODE_OF.get(mode) if type(mode) is int else None
    if kind is None:
        raise MalformedMessage(f"{where}: mode: {mode!r} is not a valid mode")
    return kind


def _decode_batch(raw: dict[str, Any]) -> Batch:
    """A batch, checked by hand: every run as a `session`, the caps before the payloads."""
    runs = raw.get("runs")
    if type(runs) is not list or not runs:
        raise MalformedMessage("batch: runs: expected a non-empty list")
    if len(runs) > MAX_BATCH:
        raise MalformedMessage(f"batch: more than {MAX_BATCH} runs")
    count = size = 0
    out: list[Run] = []
    for run in runs:
        if type(run) is not list or len(run) != 5:
            raise MalformedMessage("batch: a run is not [channel, sid, mine, mode, payloads]")
        channel, sid, mine, mode, payloads = run
        kind = _check_session("batch", channel, sid, mine, mode)
        if type(payloads) is not list or not payloads:
            raise MalformedMessage("batch: payloads: expected a non-empty list")
        count += len(payloads)
        if count > MAX_BATCH:
            raise MalformedMessage(f"batch: more than {MAX_BATCH} messages")
        for data in payloads:
            if type(data) is not bytes:
                raise MalformedMessage("batch: data: expected bytes")
            size += len(data)
        if size > MAX_BATCH_BYTES:
            raise MalformedMessage(f"batch: more than {MAX_BATCH_BYTES} bytes of data")
        out.append((channel, sid, mine, kind, payloads))
    return Batch(tuple(out))


def pack(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Encoded messages → the same with consecutive `session` maps merged into `batch` maps
    (each within `MAX_BATCH` and `MAX_BATCH_BYTES`; a lone one stays a `session`), in order.
    For a peer whose `connect` said `batch: true`."""
    out: list[dict[str, Any]] = []
    runs: list[list[Any]] = []
    first: dict[str, Any] | None = None  # the batch's first message, while it is alone
    count = size = 0
    for message in messages:
        data = message.get("data") if message["t"] == "session" else None
        if data is None or len(data) > MAX_BATCH_BYTES:
            out.append(message)
            count = 0  # the next session message starts a new batch
            continue
        sid, mine = message["sid"], message["mine"]
        if count == 0 or count >= MAX_BATCH or size + len(data) > MAX_BATCH_BYTES:
            runs, first, count, size = [], message, 0, 0
            out.append(message)
        elif first is not None:  # a second message: the lone session map becomes a batch
            runs.append([first["channel"], first["sid"], first["mine"], first["mode"],
                         [first["data"]]])  # fmt: skip
            out[-1], first = {"v": WIRE_VERSION, "t": "batch", "runs": runs}, None
        if count:
            last = runs[-1]
            if last[1] == sid and last[2] == mine:
                last[4].append(data)
            else:
                runs.append([message["channel"], sid, mine, message["mode"], [data]])
        count += 1
        size += len(data)
    return out


_MODE_OF = {int(m): m for m in Mode}
_MODE_VALUE = {m: int(m) for m in Mode}
