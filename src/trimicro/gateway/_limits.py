"""HTTP limits (DESIGN.md §7) and where each one is enforced.

| limit | default | enforced by |
|---|---|---|
| request head deadline | 10 s | `HeadDeadlineServer` below (closes the connection) |
| keep-alive idle | 60 s | hypercorn's idle timer (`keep_alive_timeout`) |
| header bytes | 16 KiB | h11's incomplete-event cap → 431; h2's header-list cap |
| body bytes | 4 MiB | the app: `Content-Length` up front, then counted → 413 |
| body read | 60 s | the app: the whole body must arrive in time → 408 |
| websocket message | 4 MiB | hypercorn's `websocket_max_message_size` (closes 1009) |

hypercorn's own `read_timeout` is per `receive_some`: a client trickling one byte every few
seconds never trips it, and applied to every read it would also cut idle keep-alive
connections and long responses. So the head gets its own deadline instead, in the one place
that sees both the bytes and the protocol's request boundaries: the connection's read loop.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

__all__ = ["HeadDeadlineServer", "HttpLimits", "hypercorn_config"]

KIB = 1024

log = logging.getLogger("trimicro.gateway.http")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class HttpLimits:
    """Timeouts (seconds) and size caps (bytes) of an HTTP server of the toolkit."""

    head_timeout: float = attrs.field(default=10.0, validator=_positive)
    keep_alive_timeout: float = attrs.field(default=60.0, validator=_positive)
    max_header_bytes: int = attrs.field(default=16 * KIB, validator=_positive)
    max_body_bytes: int = attrs.field(default=4 * KIB * KIB, validator=_positive)
    body_timeout: float = attrs.field(default=60.0, validator=_positive)
    #: Budget of one call made for a request (its deadline travels on to the service).
    call_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: On shutdown, how long requests in flight may take to finish.
    graceful_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Server pings keep idle websockets (and the peers' NAT mappings) alive.
    websocket_ping_interval: float = attrs.field(default=20.0, validator=_positive)


def hypercorn_config(limits: HttpLimits) -> Config:
    """A hypercorn `Config` carrying `limits` (the parts hypercorn enforces itself)."""
    config = Config()
    config.keep_alive_timeout = limits.keep_alive_timeout
    config.h11_max_incomplete_size = limits.max_header_bytes
    config.h2_max_header_list_size = limits.max_header_bytes
    config.websocket_max_message_size = limits.max_body_bytes
    config.websocket_ping_interval = limits.websocket_ping_interval
    config.graceful_timeout = limits.graceful_timeout
    config.read_timeout = None  # replaced by the head deadline (module docstring)
    config.include_server_header = False
    config.errorlog = log
    return config


class HeadDeadlineServer(TCPServer):
    """hypercorn's connection, with a deadline on each request head.

    The first head must be complete `head_timeout` after the connection was accepted; each
    later head within `head_timeout` of its first byte (the wait before that byte is the
    keep-alive timeout's business). The protocol says where heads end: it reports
    `Updated(idle=False)` once a request's head is parsed and `Updated(idle=True)` once the
    exchange is over and the connection waits for the next request.
    """

    def __init__(self, *args: Any, head_timeout: float) -> None:
        super().__init__(*args)
        self._head_timeout = head_timeout
        self._awaiting_head = True
        self._head_deadline = trio.current_time() + head_timeout

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):
            self._awaiting_head = event.idle
            self._head_deadline = math.inf  # the next head's clock starts at its first byte
        await super().protocol_send(event)

    def _read_deadline(self) -> float:
        return self._head_deadline if self._awaiting_head else math.inf

    async def _read_data(self) -> None:
        while True:
            data = await self._receive()
            if data is None:
                break
            if self._awaiting_head and data and self._head_deadline == math.inf:
                self._head_deadline = trio.current_time() + self._head_timeout
            await self.protocol.handle(RawData(bytes(data)))
            if not data:
                break
        await self.protocol.handle(Closed())

    async def _receive(self) -> bytes | bytearray | None:
        """The next bytes; None when the peer is gone or its head is overdue."""
        with trio.move_on_at(self._read_deadline()):
            try:
                return await self.stream.receive_some(MAX_RECV)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return None
        await self._drop_overdue()
        return None

    async def _drop_overdue(self) -> None:
        log.info("dropping a connection whose request head took over %.1f s", self._head_timeout)
        # Close now: hypercorn would otherwise hold the socket until its idle timer fires.
        await self.idle_task.stop()
        await trio.aclose_forcefully(self.stream)
