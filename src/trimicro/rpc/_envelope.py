"""RPC messages on a session: the envelope of every frame (docs/protocol.md, "RPC frames").

Each frame is one CBOR map with a type key `t` and the call id `call`. Bodies are bytes already
encoded with the call's content type, so the envelope never re-encodes user data.

Decoding is strict: wrong types, missing fields or an unknown `t` are a `ProtocolError` that
closes the session (see `decode`).
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from ..codec import DEFAULT_LIMITS
from ..session import ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "Cancel",
    "Credit",
    "End",
    "Envelope",
    "ErrorFrame",
    "GoAway",
    "Message",
    "Request",
    "Response",
    "decode",
    "encode",
]

PROTOCOL_VERSION = 1


@attrs.frozen
class Request:
    """Opens call `call`. `budget` is the caller's remaining time in ns (None: no deadline)."""

    call: int
    service: str
    endpoint: str
    metadata: dict[str, str]
    budget: int | None
    ct: str
    stream: bool
    body: bytes | None
    v: int = PROTOCOL_VERSION


@attrs.frozen
class Response:
    """The reply of a unary call (ends it)."""

    call: int
    metadata: dict[str, str]
    body: bytes


@attrs.frozen
class Message:
    """One stream message, either direction."""

    call: int
    body: bytes


@attrs.frozen
class End:
    """The sender will send no more messages on this call (half-close)."""

    call: int


@attrs.frozen
class Cancel:
    """The caller gave up: the callee cancels the handler."""

    call: int


@attrs.frozen
class Credit:
    """The receiver consumed `n` stream messages: the sender may send `n` more."""

    call: int
    n: int


@attrs.frozen
class ErrorFrame:
    """The call failed: `id`, `code`, `detail`, `status` as `trimicro.errors.Error`."""

    call: int
    id: str
    code: int
    detail: str
    status: str
    #: False when the server refused the call before starting a handler: nothing ran, so the
    #: caller may retry it anywhere.
    started: bool = True


@attrs.frozen
class GoAway:
    """The server is shutting down this connection: it answers calls up to id `call` (the
    highest it received); any later call id never ran and may be retried anywhere."""

    call: int


Envelope = Request | Response | Message | End | Cancel | Credit | ErrorFrame | GoAway

_TAGS: dict[type[Any], str] = {
    Request: "req",
    Response: "res",
    Message: "msg",
    End: "end",
    Cancel: "cancel",
    Credit: "credit",
    ErrorFrame: "err",
    GoAway: "goaway",
}
_TYPES = {tag: cls for cls, tag in _TAGS.items()}


def _strict(kind: type[Any]) -> Any:
    # cattrs' default str/int hooks convert (str(5) == "5"); a wire decoder must not guess.
    def check(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return check


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    for kind in (str, int, bytes, bool):
        converter.register_structure_hook(kind, _strict(kind))
    return converter


_converter = _make_converter()


#: Most bytes of metadata (keys and values, UTF-8) one call may carry (DESIGN.md §5).
MAX_METADATA = DEFAULT_LIMITS.max_header_size


def metadata_size(metadata: dict[str, str]) -> int:
    """The bytes of a call's metadata, as `MAX_METADATA` counts them."""
    chars = sum(len(key) + len(value) for key, value in metadata.items())
    if chars * 4 <= MAX_METADATA:  # UTF-8 takes at most 4 bytes a character: surely within
        return chars
    return sum(len(key.encode()) + len(value.encode()) for key, value in metadata.items())


def encode(envelope: Envelope) -> dict[str, Any]:
    """The wire map of an envelope."""
    message: dict[str, Any] = _converter.unstructure(envelope)
    message["t"] = _TAGS[type(envelope)]
    return message


def decode(message: dict[str, Any]) -> Envelope:
    """The envelope of a wire map; `ProtocolError` names what is wrong."""
    if not isinstance(message, dict):  # the framing only yields maps; other callers may not
        raise ProtocolError(f"frame: expected a map, got {type(message).__name__}")
    tag = message.get("t")
    cls = _TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ProtocolError(f"unknown frame type {tag!r}")
    try:
        envelope: Envelope = _converter.structure(message, cls)
    except cattrs.BaseValidationError as exc:
        detail = "; ".join(cattrs.transform_error(exc, path="frame"))
        raise ProtocolError(f"malformed {tag!r} frame: {detail}") from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ProtocolError(f"malformed {tag!r} frame: {exc}") from None
    return envelope
