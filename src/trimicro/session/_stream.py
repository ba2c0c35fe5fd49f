"""`StreamConnection`: the message `Connection` over any trio byte stream (TCP, memory, a QUIC
stream). Exceptions are translated here, so upper layers only see `SessionError`s."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
        self._send_lock = trio.Lock()
        self._closed = False

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
        # Uncontended, take the lock without a scheduling round trip: send_all checkpoints.
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            await self._stream.send_all(frame)
        except _STREAM_ERRORS as exc:
            raise ConnectionClosed(str(exc) or type(exc).__name__) from exc
        finally:
            self._send_lock.release()

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
