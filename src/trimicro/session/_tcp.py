"""`tcp://`: framed messages over TCP."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

import trio

from ._address import format_address, parse_address
from ._base import ConnectError, Connection, ConnectionHandler, SessionError
from ._stream import StreamConnection

__all__ = ["TcpTransport"]

log = logging.getLogger("trimicro.session")


def _endpoint(sock: trio.socket.SocketType) -> str:
    host, port = sock.getsockname()[:2]
    return format_address(host, port)


def _peer(sock: trio.socket.SocketType) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return format_address(host, port)


class TcpTransport:
    """The `Transport` for `tcp://`."""

    scheme = "tcp"

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        host, port = parse_address(address)
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = _endpoint(listeners[0].socket)

        async def serve_one(stream: trio.SocketStream) -> None:
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            conn = StreamConnection(
                stream,
                _peer(stream.socket),
                _endpoint(stream.socket),
                write_some=_writer(stream),
            )
            try:
                await handler(conn)
            except SessionError as exc:
                # One broken connection must not take the listener down with it.
                log.info("connection from %s ended: %s", conn.peer, exc)
            finally:
                await conn.aclose()

        await trio.serve_listeners(serve_one, listeners, task_status=_Started(task_status, bound))

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        host, port = parse_address(address)
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {address}: {exc.strerror or exc}") from None
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        return StreamConnection(
            stream, address, _endpoint(stream.socket), write_some=_writer(stream)
        )


def _writer(stream: trio.SocketStream) -> Callable[[bytes], int] | None:
    """Write what the socket takes now, without waiting: the bytes written (0 when its
    buffer is full or it failed: `send_all` then waits, or raises the error). The socket
    is non-blocking (trio's); a closed one has no descriptor (-1), so nothing else is
    written to. None where a socket is not a file descriptor (Windows)."""
    if os.name == "nt":
        return None

    def write_some(data: bytes) -> int:
        try:
            return os.write(stream.socket.fileno(), data)
        except OSError:
            return 0

    return write_some


class _Started:
    """Reports the bound address instead of trio's listener list."""

    def __init__(self, task_status: trio.TaskStatus[str], bound: str) -> None:
        self._task_status = task_status
        self._bound = bound

    def started(self, value: object = None) -> None:
        self._task_status.started(self._bound)
