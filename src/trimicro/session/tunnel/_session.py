"""Trio-style tunnel sessions and listeners (the driver's objects users hold)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from ._events import SessionKey
from ._messages import Mode

if TYPE_CHECKING:
    from ._driver import Tunnel

__all__ = ["SESSION_QUEUE", "TunnelListener", "TunnelSession"]

#: Messages a session holds for a reader that is behind. At this many, the link's reader
#: waits for room (back-pressure through the link to the sender) ...
SESSION_QUEUE = 256
#: ... but not for longer than this: then that session is closed as broken, so one stuck
#: reader cannot stall every other session on its link for good.
SESSION_STALL = 10.0
#: Sessions a listener holds before `accept()` takes them; beyond it new ones are refused.
ACCEPT_BACKLOG = 128


class TunnelSession:
    """One virtual connection over the tunnel: `send(bytes)`, `receive() -> bytes`, `aclose()`.

    `receive` raises `trio.EndOfChannel` once the other side closed and everything it sent
    was read, `trio.BrokenResourceError` when the link under the session went down (or the
    reader held `SESSION_QUEUE` unread messages for `SESSION_STALL` seconds). `send` after
    `aclose` raises `trio.ClosedResourceError`, and of more than the tunnel's
    `TunnelOptions.max_message` bytes `ValueError` (nothing is sent). Multicast and
    broadcast sessions send to many links at once.
    """

    def __init__(self, tunnel: Tunnel, key: SessionKey, channel: str, mode: Mode) -> None:
        self._tunnel = tunnel
        self.key, self.channel, self.mode = key, channel, mode
        self._buffer: deque[bytes] = deque()
        self._readable = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self._ended: str | None = None  # why no more data will come
        self._broken = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<TunnelSession {self.channel!r} {self.mode.name.lower()} {self.key}>"

    @property
    def link(self) -> str | None:
        """The link the session rides on (unicast and accepted sessions)."""
        return self._tunnel._core.session_link(self.key)

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the session is closed")
        if self._ended is not None:
            raise trio.BrokenResourceError(f"the session ended: {self._ended}")
        await self._tunnel._send(self, data)

    async def receive(self) -> bytes:
        # When data is waiting this is a cancel point but no schedule point (as
        # StreamConnection.receive): an echo loop handles a message per scheduling round,
        # not one per two. Cancelled here, nothing was taken.
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._buffer:
            if self._closed:
                raise trio.ClosedResourceError("the session is closed")
            if self._ended is not None:
                if self._broken:
                    raise trio.BrokenResourceError(f"the session ended: {self._ended}")
                raise trio.EndOfChannel(self._ended)
            await self._readable.park()
        data = self._buffer.popleft()
        if len(self._room) and len(self._buffer) < SESSION_QUEUE:
            self._room.unpark_all()
        return data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            try:
                yield await self.receive()
            except trio.EndOfChannel:
                return

    async def aclose(self) -> None:
        """Close this end; the other end's `receive` ends. Idempotent."""
        if not self._closed:
            self._closed = True
            self._tunnel._close_session(self)
            self._readable.unpark_all()
            self._room.unpark_all()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> TunnelSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- fed by the driver -------------------------------------------------------------------

    def _deliver(self, data: bytes) -> bool:
        """Queue received data; True when the queue is now full (the driver waits)."""
        self._buffer.append(data)
        if len(self._readable):
            self._readable.unpark_all()
        return len(self._buffer) >= SESSION_QUEUE

    @property
    def _full(self) -> bool:
        return len(self._buffer) >= SESSION_QUEUE and not self._closed and self._ended is None

    async def _wait_room(self) -> None:
        while self._full:
            await self._room.park()

    def _end(self, reason: str, *, broken: bool) -> None:
        if self._ended is None:
            self._ended, self._broken = reason, broken
        self._readable.unpark_all()
        self._room.unpark_all()


class TunnelListener:
    """Sessions others open on one channel: `accept()`, `async for`, `aclose()`."""

    def __init__(self, tunnel: Tunnel, channel: str) -> None:
        self._tunnel = tunnel
        self.channel = channel
        self._backlog: deque[TunnelSession] = deque()
        self._ready = trio.lowlevel.ParkingLot()
        self._closed = False

    def __repr__(self) -> str:
        return f"<TunnelListener {self.channel!r}>"

    async def accept(self) -> TunnelSession:
        while not self._backlog:
            if self._closed:
                raise trio.ClosedResourceError("the listener is closed")
            await self._ready.park()
        session = self._backlog.popleft()
        await trio.lowlevel.checkpoint()
        return session

    def __aiter__(self) -> AsyncIterator[TunnelSession]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TunnelSession]:
        while True:
            try:
                yield await self.accept()
            except trio.ClosedResourceError:
                return

    async def aclose(self) -> None:
        """Stop listening (peers are told); sessions not yet accepted are closed. Idempotent."""
        if not self._closed:
            self._closed = True
            self._tunnel._unlisten(self)
            while self._backlog:
                await self._backlog.popleft().aclose()
            self._ready.unpark_all()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> TunnelListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _offer(self, session: TunnelSession) -> bool:
        if self._closed or len(self._backlog) >= ACCEPT_BACKLOG:
            return False
        self._backlog.append(session)
        self._ready.unpark_all()
        return True
