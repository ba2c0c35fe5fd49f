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
    """Frames waiting for the current writer's next `send_all`."""

    __slots__ = ("done", "error", "frames", "retry", "taken")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.done = trio.Event()
        self.taken = False  # the writer took it: it is (being) sent
        self.retry = False  # the writer stopped first: its senders write themselves
        self.error: str | None = None


def _index(frames: list[bytes], frame: bytes) -> int:
    return next(i for i, f in enumerate(frames) if f is frame)


class StreamConnection:
    """Frames over a trio `Stream`. `send` is safe from many tasks; `receive` from one."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        peer: str,
        local: str = "",
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._stream = stream
        self._peer = peer
        self._local = local
        self._limits = limits
        self._decoder = FrameDecoder(limits)
        self._writing = False
        self._next = _Batch()
        self._closed = False
        # Streams that can write without waiting (QUIC) let `send_nowait` skip a task hop.
        self._write_nowait: Callable[[bytes], bool] | None = getattr(
            stream, "send_all_nowait", None
        )
        self._before_transmit: Callable[[Callable[[], None]], bool] | None = getattr(
            stream, "call_before_transmit", None
        )

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
        if self._closed:
            raise ConnectionClosed("connection is closed")
        frame = encode_frame(message, self._limits)
        while self._writing:
            # Someone is writing: join the next batch they send (group commit: one
            # `send_all` for every frame that arrives during a write).
            batch = self._next
            batch.frames.append(frame)
            try:
                await batch.done.wait()
            except BaseException:
                if not batch.taken:  # never left: take it back, nothing was sent
                    del batch.frames[_index(batch.frames, frame)]
                raise
            if batch.error is not None:
                raise ConnectionClosed(batch.error)
            if not batch.retry:
                return
            # The writer stopped before taking our batch: write it ourselves.
        await self._write_as_writer(frame)

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

    async def _write_as_writer(self, frame: bytes) -> None:
        self._writing = True
        try:
            await self._send_all(frame)
            # Whatever arrived meanwhile, batch after batch until none is waiting: frames
            # leave in the order they came (a go-away's "highest call id" relies on it).
            while self._next.frames:
                batch, self._next = self._next, _Batch()
                batch.taken = True
                try:
                    await self._send_all(b"".join(batch.frames))
                except BaseException as exc:
                    batch.error = str(exc) or type(exc).__name__
                    raise
                finally:
                    batch.done.set()
        finally:
            self._writing = False
            waiting = self._next
            if waiting.frames:  # we were cancelled or failed first: they write themselves
                self._next = _Batch()
                waiting.retry = True
                waiting.done.set()

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
                raise ConnectionClosed("connection is closed")
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
