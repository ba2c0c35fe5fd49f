"""`TunnelTransport`: a `Transport` whose addresses are tunnel channels.

`serve(handler, "greeter")` listens on channel `greeter` and runs `handler` for every unicast
session opened on it, wherever in the tunnel's network the dialler is; `connect(nursery,
"greeter")` dials it. So RPC runs over tunnel sessions unchanged (go-micro's tunnel
transport), e.g. a service behind NAT answering calls made on the other side of its link.
Each message is one CBOR map, carried as one tunnel session message.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from typing import Any

import trio

from ...codec import DEFAULT_LIMITS, CodecError, Limits, cbor_dumps, cbor_loads
from .._base import (
    ConnectError,
    Connection,
    ConnectionClosed,
    ConnectionHandler,
    FrameTooLarge,
    ProtocolError,
    SessionError,
)
from ._driver import Tunnel
from ._session import TunnelSession

__all__ = ["TunnelConnection", "TunnelTransport"]

log = logging.getLogger("trimicro.session.tunnel")

#: Room left in a link frame for the tunnel's own fields around a session message.
ENVELOPE_ROOM = 1024


class TunnelConnection:
    """A `Connection` over one tunnel session."""

    def __init__(
        self, session: TunnelSession, peer: str, local: str, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._session = session
        self._peer, self._local = peer, local
        self._limits = limits
        self._closed = False

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def local(self) -> str:
        return self._local

    def __repr__(self) -> str:
        return f"<TunnelConnection {self._local} -> {self._peer}>"

    async def send(self, message: Mapping[str, Any]) -> None:
        if self._closed:
            raise ConnectionClosed("connection is closed")
        data = cbor_dumps(message if type(message) is dict else dict(message))
        limit = self._limits.max_frame_size - ENVELOPE_ROOM
        if len(data) > limit:
            raise FrameTooLarge(f"message of {len(data)} bytes exceeds the limit of {limit}")
        try:
            await self._session.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed(str(exc) or "session closed") from None

    async def receive(self) -> dict[str, Any]:
        try:
            data = await self._session.receive()
        except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed(str(exc) or "session closed") from None
        try:
            message = cbor_loads(data, max_depth=self._limits.max_depth)
        except CodecError as exc:
            await self.aclose()
            raise ProtocolError(f"bad message on tunnel session: {exc}") from None
        if not isinstance(message, dict):
            await self.aclose()
            raise ProtocolError("bad message on tunnel session: not a map")
        return message

    async def aclose(self) -> None:
        self._closed = True
        await self._session.aclose()


class TunnelTransport:
    """The `Transport` over a running tunnel (its scheme is `tunnel`)."""

    scheme = "tunnel"

    def __init__(
        self, tunnel: Tunnel, *, dial_timeout: float | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.tunnel = tunnel
        self._dial_timeout = dial_timeout
        self._limits = limits
        self._channels = itertools.count(1)

    def __repr__(self) -> str:
        return f"<TunnelTransport {self.tunnel!r}>"

    def _assign(self, address: str) -> str:
        # "", ":0" and "host:0" ask for any channel, as with TCP.
        if not address or address.endswith(":0"):
            return f"{self.tunnel.id}/{next(self._channels)}"
        return address

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        channel = self._assign(address)
        listener = self.tunnel.listen(channel)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(channel)
                async for session in listener:
                    conn = TunnelConnection(session, f"tunnel:{session.key}", channel, self._limits)
                    nursery.start_soon(_handle, handler, conn)
        finally:
            with trio.CancelScope(shield=True):
                await listener.aclose()

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        try:
            session = await self.tunnel.dial(address, timeout=self._dial_timeout)
        except ConnectError:
            raise
        except ValueError as exc:
            raise ConnectError(f"cannot connect to tunnel channel {address!r}: {exc}") from None
        return TunnelConnection(session, address, self.tunnel.id, self._limits)


async def _handle(handler: ConnectionHandler, conn: TunnelConnection) -> None:
    try:
        await handler(conn)
    except SessionError as exc:
        log.info("tunnel session on %s ended: %s", conn.local, exc)
    finally:
        with trio.CancelScope(shield=True):
            await conn.aclose()
