"""`StreamConnection`: the message `Connection` over any trio byte stream (TCP, memory, a QUIC
stream). Exceptions are translated here, so upper layers only see `SessionError`s."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import trio

from ..codec import DEFAULT_LIMITS, Limits
from ._base import ConnectionClosed
from ._protocol import FrameDecoder, encode_frame

__all__ = ["StreamConnection", "map_exceptions"]

RECEIVE_SIZE = 65536
_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@contextmanager
def map_exceptions() -> Iterator[None]:
    """trio's and the OS's connection errors → `ConnectionClosed` (as httpcore does)."""
    try:
        yield
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise ConnectionClosed(str(exc) or type(exc).__name__) from exc


class _Batch:
    """Frames given while a writer was busy, sent together by one `send_all`.

    `state`: "waiting" (the writer takes it next), "writing" (taken: being sent), "sent",
    "failed" (`error` says why), or "orphaned": its writer stopped (cancelled) before any of
    it was written; the first of its senders to run then writes it, in the writer's place,
    before anything given later. `done` is set whenever the state leaves "waiting" or
    "writing" (a fresh event is made when an orphan is taken up again)."""

    __slots__ = ("done", "error", "frames", "state")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.done = trio.Event()
        self.state = "waiting"
        self.error: str | None = None

    def settle(self, state: str, error: str | None = None) -> None:
        self.state, self.error = state, error
        self.done.set()


def _index(frames: list[bytes], frame: bytes) -> int:
    return next(i for i, f in enumerate(frames) if f is frame)


def _whole_or_nothing(
    write_nowait: Callable[[bytes], bool] | None,
) -> Callable[[bytes], int] | None:
    """A stream's all-or-nothing `send_all_nowait` as a `write_some`."""
    if write_nowait is None:
        return None
    return lambda data: len(data) if write_nowait(data) else 0


class StreamConnection:
    """Frames over a trio `Stream`. `send` is safe from many tasks; `receive` from one."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        peer: str,
        local: str = "",
        limits: Limits = DEFAULT_LIMITS,
        *,
        write_some: Callable[[bytes], int] | None = None,
    ) -> None:
        self._stream = stream
        self._peer = peer
        self._local = local
        self._limits = limits
        self._decoder = FrameDecoder(limits)
        self._writing = False  # the writer role is held (by a writer, or for an orphan)
        self._next = _Batch()
        self._orphan: _Batch | None = None
        self._closed = False
        self._broken: str | None = None  # why the connection closed itself
        # A cancelled `send_all` of this stream wrote nothing (QUIC's write is synchronous).
        self._cancel_safe: bool = getattr(stream, "cancel_safe_send", False)
        # Streams that can write without waiting (QUIC) let `send_nowait` skip a task hop.
        self._write_nowait: Callable[[bytes], bool] | None = getattr(
            stream, "send_all_nowait", None
        )
        self._before_transmit: Callable[[Callable[[], None]], bool] | None = getattr(
            stream, "call_before_transmit", None
        )
        # Writes what the stream takes now, without waiting (bytes written): `send_eager`.
        self._write_some = write_some or _whole_or_nothing(self._write_nowait)

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def local(self) -> str:
        return self._local

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<StreamConnection {self._local} -> {self._peer} {state}>"

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one message. Safe from many tasks: while one task writes, frames given by
        others are sent together by its next `send_all` (group commit), in the order given.
        Cancelled before its frame was taken for writing, nothing was sent; after, it was
        (or is being) sent. A write cut off part way leaves the byte stream in an unknown
        state: the connection is then closed."""
        if self._closed:
            raise ConnectionClosed(f"connection is closed{self._why()}")
        frame = encode_frame(message, self._limits)
        if not self._writing:
            self._writing = True
            await self._write_as_writer(frame, None)
            return
        batch = self._next
        batch.frames.append(frame)
        while True:
            try:
                await batch.done.wait()
            except BaseException:
                if batch.state in ("waiting", "orphaned"):  # not taken: nothing was sent
                    del batch.frames[_index(batch.frames, frame)]
                    if batch.state == "orphaned" and not batch.frames:
                        self._hand_on()
                raise
            if batch.state == "sent":
                return
            if batch.state == "failed":
                raise ConnectionClosed(batch.error or "send failed")
            if batch.state == "orphaned" and self._orphan is batch:
                # The writer stopped before writing our batch: we write it in its place.
                self._orphan = None
                await self._write_as_writer(frame, batch)
                return
            # Another of the batch's senders took it up: wait for that write.

    async def send_eager(self, message: Mapping[str, Any]) -> None:
        """`send` for a task that blocks right after (a caller about to wait for its reply,
        a handler about to finish): when nobody is writing and the stream takes the frame
        at once, it is written with no schedule point (a cancel point only), which saves
        the task a trip through the scheduler. Otherwise, or for what the stream did not
        take, as `send`."""
        if self._writing or self._write_some is None:
            await self.send(message)
            return
        if self._closed:
            raise ConnectionClosed(f"connection is closed{self._why()}")
        frame = encode_frame(message, self._limits)
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            written = self._write_some(frame)
        except _STREAM_ERRORS:
            written = 0  # `send` meets the error again and reports it
        if written == len(frame):
            return
        self._writing = True
        await self._write_as_writer(frame[written:], None, started=written > 0)

    def send_nowait(self, message: Mapping[str, Any]) -> bool:
        """Send `message` at once if the stream takes it without waiting (a QUIC stream with
        room, no `send` under way); False: nothing was sent, `send` it. Frames stay in the
        order they were given, whichever method sent them."""
        if self._write_nowait is None or self._closed or self._writing:
            return False
        return self._write_nowait(encode_frame(message, self._limits))

    def call_before_transmit(self, callback: Callable[[], None]) -> bool:
        """Have `callback` run right before the stream's connection next builds packets
        (a QUIC stream), where it may `send_nowait` what it gathered until then; False: the
        stream cannot (not QUIC, or closed), nothing was arranged."""
        hook = self._before_transmit
        return hook is not None and not self._closed and hook(callback)

    async def _write_as_writer(
        self, frame: bytes, orphan: _Batch | None, *, started: bool = False
    ) -> None:
        """Write our frame (or the orphaned batch holding it), then whatever arrived
        meanwhile, batch after batch until none waits: frames leave in the order they came
        (a go-away's "highest call id" relies on it). We hold the writer role throughout.
        `started`: the frame is the rest of one partly written already."""
        batch = orphan
        writing = started  # inside a write: a cancel there may cut a frame short
        try:
            if batch is not None:
                batch.state, batch.done = "writing", trio.Event()
            if not started:
                # Cancelled before a write, nothing is cut: what is in hand is handed on.
                await trio.lowlevel.checkpoint_if_cancelled()
            writing = True
            await self._send_all(frame if batch is None else b"".join(batch.frames))
            writing = False
            if batch is not None:
                batch.settle("sent")
            while self._next.frames:
                await trio.lowlevel.checkpoint_if_cancelled()
                batch, self._next = self._next, _Batch()
                batch.state = "writing"
                writing = True
                await self._send_all(b"".join(batch.frames))
                writing = False
                batch.settle("sent")
        except BaseException as exc:
            in_hand = batch if batch is not None and batch.state == "writing" else None
            if writing and isinstance(exc, trio.Cancelled) and not self._cancel_safe:
                # Part of a frame may be out: nothing more can go on this stream.
                if in_hand is not None:
                    in_hand.settle("failed", "connection closed: a write was cancelled")
                self._break("a write was cancelled part way (the stream's state is unknown)")
                await trio.aclose_forcefully(self._stream)
            elif in_hand is None:
                self._hand_on()
            elif isinstance(exc, trio.Cancelled):  # none of it was written: hand it on
                if any(f is frame for f in in_hand.frames):
                    del in_hand.frames[_index(in_hand.frames, frame)]  # ours: we raise
                in_hand.state = "orphaned"
                self._orphan = in_hand
                self._hand_on()
            else:
                in_hand.settle("failed", str(exc) or type(exc).__name__)
                self._hand_on()  # the next batch's senders meet the error themselves
            raise
        self._hand_on()

    def _hand_on(self) -> None:
        """The writer role is free: give it to the orphaned batch's senders (the first of
        them to run writes it), else to the senders of the next batch, else release it."""
        orphan = self._orphan
        if orphan is not None:
            if orphan.frames:
                orphan.done.set()  # its senders wake; the first to run takes it up
                return
            orphan.state = "sent"  # every sender of it left: nothing of it remains
            self._orphan = None
        waiting = self._next
        if waiting.frames:
            self._next = _Batch()
            waiting.state = "orphaned"
            self._orphan = waiting
            waiting.done.set()
            return
        self._writing = False

    def _break(self, reason: str) -> None:
        """Closed for good, every frame not yet sent failed: the stream may hold part of a
        frame, so nothing more can go on it."""
        self._closed = True
        self._broken = reason
        for batch in (self._orphan, self._next):
            if batch is not None and batch.state in ("waiting", "orphaned"):
                batch.settle("failed", f"connection closed: {reason}")
        self._orphan, self._next = None, _Batch()
        self._writing = False

    def _why(self) -> str:
        return f": {self._broken}" if self._broken else ""

    async def _send_all(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except _STREAM_ERRORS as exc:
            raise ConnectionClosed(str(exc) or type(exc).__name__) from exc

    async def receive(self) -> dict[str, Any]:
        while True:
            message = self._decoder.next_message()
            if message is not None:
                return message
            if self._closed or self._decoder.eof:
                raise ConnectionClosed(f"connection is closed{self._why()}")
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except _STREAM_ERRORS as exc:
                raise ConnectionClosed(str(exc) or type(exc).__name__) from exc
            self._decoder.receive_data(data)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await trio.aclose_forcefully(self._stream)
