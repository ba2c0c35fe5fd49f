"""The interface every transport implements, and the errors it raises.

A transport carries *messages* (one CBOR map each, see `_protocol.py`) over connections. The
rpc layer multiplexes many calls over one connection by call id, so a transport only has to
move whole messages in order, both ways.

Exceptions are translated at this boundary (as httpcore does): callers above never see
`trio.BrokenResourceError`, `OSError` and friends, only the `SessionError` family.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio

from ._errors import (
    ConnectError,
    ConnectionClosed,
    FrameTooLarge,
    ProtocolError,
    SessionError,
)

__all__ = [
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "ConnectionHandler",
    "FrameTooLarge",
    "ProtocolError",
    "SessionError",
    "Transport",
]


class Connection(Protocol):
    """A message connection. `send` may be called from many tasks at once (it serialises);
    `receive` from one task at a time. `aclose` is idempotent."""

    @property
    def peer(self) -> str: ...

    @property
    def local(self) -> str: ...

    async def send(self, message: Mapping[str, Any]) -> None: ...

    async def receive(self) -> dict[str, Any]:
        """The next message; raises `ConnectionClosed` at end of stream."""
        ...

    async def aclose(self) -> None: ...


ConnectionHandler = Callable[[Connection], Awaitable[None]]


class Transport(Protocol):
    """Creates listeners and outgoing connections for one URL scheme (`tcp`, `memory`, `quic`)."""

    @property
    def scheme(self) -> str: ...

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on `address` ("host:port", port 0 for any), report the bound address through
        `task_status.started(bound)`, and run `handler(conn)` for each connection in a nursery
        of its own until cancelled. The connection is closed when the handler returns."""
        ...

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        """Connect to `address`. Any background task the connection needs runs in `nursery`
        (borrowed, as trio-websocket's `connect_*`). Raises `ConnectError`."""
        ...
