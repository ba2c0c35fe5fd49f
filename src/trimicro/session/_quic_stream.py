"""One QUIC stream pair as a trio byte stream, with back-pressure both ways.

trimicro sends on its own unidirectional stream and receives on the peer's, so either side
may speak first (a server cannot send on a bidirectional stream its client has not opened).

- Sending: aioquic buffers whatever it is given, so `send_all` waits while more than
  `send_buffer` bytes are unacknowledged. The wait comes *before* anything is written, and
  the write itself is synchronous, so a cancelled `send_all` wrote nothing: the stream
  stays usable, which a framed connection needs (no half frame on the wire).
- Receiving: bytes wait in a queue until read; the peer's credit moves only as they are
  read (`WindowedQuicConnection.consume`), so the queue never holds more than one window.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from typing import Protocol

import trio

from ._quic_flow import WindowedQuicConnection

__all__ = ["SEND_BUFFER", "QuicByteStream"]

#: Unacknowledged bytes a stream may hold before `send_all` waits (one more write of any
#: size is then accepted whole, so a frame is never split by a cancellation).
SEND_BUFFER = 1024 * 1024


class StreamHost(Protocol):
    """What a stream needs from its connection's driver."""

    @property
    def quic(self) -> WindowedQuicConnection: ...

    def request_transmit(self) -> None: ...

    def call_before_transmit(self, callback: Callable[[], None]) -> None: ...

    def close_gracefully(self) -> None: ...


class QuicByteStream(trio.abc.HalfCloseableStream):
    """Sends on stream `send_id`, receives from stream `receive_id` of one QUIC connection."""

    #: A cancelled `send_all` wrote nothing (it waits before writing, and writes at once).
    cancel_safe_send = True

    def __init__(
        self, host: StreamHost, send_id: int, receive_id: int, *, send_buffer: int = SEND_BUFFER
    ) -> None:
        self._host = host
        self.send_id = send_id
        self.receive_id = receive_id
        self._send_buffer = send_buffer
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._eof_received = False
        self._eof_sent = False
        self._closed = False
        self._receive_error: str | None = None
        self._send_error: str | None = None
        self._receiving = False
        self._sending = False
        self._readable = trio.lowlevel.ParkingLot()
        self._writable = trio.lowlevel.ParkingLot()

    def __repr__(self) -> str:
        return f"<QuicByteStream send={self.send_id} receive={self.receive_id} {self._queued}B>"

    # -- fed by the driver -----------------------------------------------------------------

    def feed(self, data: bytes, end_stream: bool) -> None:
        if data:
            self._chunks.append(data)
            self._queued += len(data)
        self._eof_received = self._eof_received or end_stream
        self._readable.unpark_all()

    def fail_receive(self, reason: str) -> None:
        self._receive_error = self._receive_error or reason
        self._readable.unpark_all()

    def fail_send(self, reason: str) -> None:
        self._send_error = self._send_error or reason
        self._writable.unpark_all()

    def fail(self, reason: str) -> None:
        """The connection ended: both directions are broken (data already queued stays)."""
        self.fail_receive(reason)
        self.fail_send(reason)

    def acknowledged(self) -> None:
        """Acknowledgements arrived: wake a writer once the buffer has room."""
        if len(self._writable) and not self._over_buffer():
            self._writable.unpark_all()

    # -- sending ---------------------------------------------------------------------------

    def _over_buffer(self) -> bool:
        return self._host.quic.send_buffered(self.send_id) > self._send_buffer

    def _check_send(self) -> None:
        if self._closed or self._eof_sent:
            raise trio.ClosedResourceError("stream is closed for sending")
        if self._send_error is not None:
            raise trio.BrokenResourceError(self._send_error)

    async def _wait_for_room(self) -> None:
        while self._over_buffer():
            await self._writable.park()
            self._check_send()

    def call_before_transmit(self, callback: Callable[[], None]) -> bool:
        """Have `callback` run right before the connection next builds packets (it may then
        `send_all_nowait`); False: the stream is closed or broken, nothing was arranged."""
        if self._closed or self._eof_sent or self._send_error is not None:
            return False
        self._host.call_before_transmit(callback)
        return True

    def send_all_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Write `data` now if that needs no waiting: open, no task in `send_all`, room in
        the buffer. False: nothing was written (`send_all` will wait, or raise)."""
        if (
            self._sending
            or self._closed
            or self._eof_sent
            or self._send_error is not None
            or self._over_buffer()
        ):
            return False
        self._write(data)
        return True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            # Write before yielding (trio's own socket pattern): tasks woken together then
            # all write before the driver runs, and their frames share packets.
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_send()
            if self._over_buffer():
                await self._wait_for_room()
                self._write(data)
            else:
                self._write(data)
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._host.quic.send_stream_data(self.send_id, bytes(data))
            self._host.request_transmit()

    async def wait_send_all_might_not_block(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint()
            self._check_send()
            await self._wait_for_room()
        finally:
            self._sending = False

    def mark_eof(self) -> bool:
        """No more sending; True when a FIN is still to be written."""
        needed = not self._eof_sent and self._send_error is None
        self._eof_sent = True
        return needed

    async def send_eof(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("stream is closed")
        if self.mark_eof():
            self._host.quic.send_stream_data(self.send_id, b"", end_stream=True)
            self._host.request_transmit()

    # -- receiving -------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving from this stream")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._ready():
                data = self._receive(max_bytes)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
            while not self._ready():
                await self._readable.park()
            return self._receive(max_bytes)
        finally:
            self._receiving = False

    def _ready(self) -> bool:
        return bool(
            self._closed or self._queued or self._eof_received or self._receive_error is not None
        )

    def _receive(self, max_bytes: int | None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("stream is closed")
        if self._queued:
            return self._take(max_bytes)
        if self._eof_received:
            return b""
        raise trio.BrokenResourceError(self._receive_error)

    def _take(self, max_bytes: int | None) -> bytes:
        limit = self._queued if max_bytes is None else min(max_bytes, self._queued)
        parts: list[bytes] = []
        size = 0
        while size < limit:
            chunk = self._chunks.popleft()
            if size + len(chunk) > limit:
                cut = limit - size
                self._chunks.appendleft(chunk[cut:])
                chunk = chunk[:cut]
            parts.append(chunk)
            size += len(chunk)
        self._queued -= size
        if self._host.quic.consume(self.receive_id, size):
            self._host.request_transmit()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- closing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Closing trimicro's stream closes its connection (one stream pair per connection):
        our FIN goes out, and CONNECTION_CLOSE once it is acknowledged (bounded wait)."""
        if not self._closed:
            self._closed = True
            self._chunks.clear()
            self._readable.unpark_all()
            self._writable.unpark_all()
            self._host.close_gracefully()
        await trio.lowlevel.checkpoint()
