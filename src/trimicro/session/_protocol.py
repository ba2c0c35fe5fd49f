"""Sans-io framing: a 4-byte big-endian length, then one CBOR map (docs/protocol.md §1).

No I/O here: feed bytes with `receive_data`, take messages with `next_message` (as h11 does).
The declared length is checked the moment the prefix is complete, before the body is
buffered, so a hostile peer cannot make us allocate more than the limit.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from ..codec import DEFAULT_LIMITS, CodecError, Limits, cbor_dumps, cbor_loads
from ._errors import FrameTooLarge, ProtocolError

__all__ = ["FrameDecoder", "encode_frame"]

_PREFIX = struct.Struct(">I")
_TEXT = (str,)  # `all(map(isinstance, keys, _TEXT * n))`: the key check without a Python loop
# Compact the receive buffer once this much consumed data sits in front of it.
_COMPACT_AT = 64 * 1024


def encode_frame(message: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of one frame carrying `message`."""
    try:
        body = cbor_dumps(message)
    except CodecError as exc:
        raise ProtocolError(str(exc)) from None
    if len(body) > limits.max_frame_size:
        raise FrameTooLarge(f"frame of {len(body)} bytes exceeds {limits.max_frame_size}")
    return _PREFIX.pack(len(body)) + body


class FrameDecoder:
    """Turns a byte stream into messages; any split of the stream parses the same."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._start = 0  # consumed bytes at the front of _buffer
        self._closed = False

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the peer; `b""` means the peer closed its side."""
        if self._closed:
            raise ProtocolError("data after end of stream")
        if not data:
            self._closed = True
            return
        self._buffer += data

    @property
    def eof(self) -> bool:
        """The peer closed cleanly at a frame boundary and every message has been taken."""
        return self._closed and self._start == len(self._buffer)

    def next_message(self) -> dict[str, Any] | None:
        """The next complete message, or None when more data is needed."""
        available = len(self._buffer) - self._start
        if available < _PREFIX.size:
            return self._need_more(available)
        (length,) = _PREFIX.unpack_from(self._buffer, self._start)
        if length > self._limits.max_frame_size:
            raise FrameTooLarge(f"frame of {length} bytes exceeds {self._limits.max_frame_size}")
        if available < _PREFIX.size + length:
            return self._need_more(available)
        begin = self._start + _PREFIX.size
        body = bytes(self._buffer[begin : begin + length])
        self._consume(_PREFIX.size + length)
        return _decode_body(body, self._limits)

    def _need_more(self, available: int) -> dict[str, Any] | None:
        if self._closed and available:
            raise ProtocolError(f"connection closed in the middle of a frame ({available} bytes)")
        return None

    def _consume(self, n: int) -> None:
        self._start += n
        if self._start == len(self._buffer):
            self._buffer.clear()
            self._start = 0
        elif self._start >= _COMPACT_AT:
            del self._buffer[: self._start]
            self._start = 0


def _decode_body(body: bytes, limits: Limits) -> dict[str, Any]:
    try:
        message = cbor_loads(body, max_depth=limits.max_depth)
    except CodecError as exc:
        raise ProtocolError(str(exc)) from None
    if not isinstance(message, dict) or not all(map(isinstance, message, _TEXT * len(message))):
        raise ProtocolError("frame body is not a CBOR map with text keys")
    return message
