"""`memory://NAME`: in-process transport over trio memory streams, with fault injection.

Everything runs on trio's clock, so it works under `MockClock(autojump_threshold=0)`.
Transports with the same NAME reach each other; the real framing code runs on every byte.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import attrs
import trio
import trio.testing

from ._base import ConnectError, Connection, ConnectionHandler, SessionError
from ._stream import StreamConnection

__all__ = ["Faults", "MemoryTransport"]

log = logging.getLogger("trimicro.session")

#: Connections a listener may have waiting to be handled.
ACCEPT_BACKLOG = 128


@attrs.define
class Faults:
    """Faults applied to a hub's connections, on trio's clock.

    - `delay`: seconds each `send` waits before its bytes leave (one-way latency).
    - `partitioned`: addresses cut off; connecting to them fails, and their open connections
      break at the next send or receive.
    """

    delay: float = 0.0
    partitioned: set[str] = attrs.field(factory=set)


@attrs.define(eq=False)
class _Hub:
    listeners: dict[str, trio.MemorySendChannel[StreamConnection]] = attrs.field(factory=dict)
    faults: Faults = attrs.field(factory=Faults)
    ports: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))


_hubs: dict[str, _Hub] = {}


class _FaultyStream(trio.abc.Stream):
    """A memory stream that honours the hub's faults for one address."""

    def __init__(self, inner: trio.abc.Stream, faults: Faults, address: str) -> None:
        self._inner, self._faults, self._address = inner, faults, address

    def _check(self) -> None:
        if self._address in self._faults.partitioned:
            raise trio.BrokenResourceError(f"{self._address} is partitioned")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check()
        if self._faults.delay:
            await trio.sleep(self._faults.delay)
            self._check()
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        self._check()
        data = await self._inner.receive_some(max_bytes)
        self._check()
        return data

    async def aclose(self) -> None:
        await self._inner.aclose()


class MemoryTransport:
    """The `Transport` for `memory://NAME`."""

    scheme = "memory"

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._hub = _hubs.setdefault(name, _Hub())

    @property
    def faults(self) -> Faults:
        return self._hub.faults

    def _assign(self, address: str) -> str:
        # "host:0", ":0" and "" ask for any address, as with TCP.
        if not address or address.endswith(":0"):
            return f"memory-{next(self._hub.ports)}"
        return address

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        bound = self._assign(address)
        if bound in self._hub.listeners:
            raise OSError(f"memory://{self.name}: {bound} is already in use")
        send, receive = trio.open_memory_channel[StreamConnection](ACCEPT_BACKLOG)
        self._hub.listeners[bound] = send
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(bound)
                async for conn in receive:
                    nursery.start_soon(_handle, handler, conn)
        finally:
            del self._hub.listeners[bound]
            send.close()

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        await trio.lowlevel.checkpoint()
        listener = self._hub.listeners.get(address)
        if listener is None or address in self._hub.faults.partitioned:
            raise ConnectError(f"cannot connect to memory://{self.name}/{address}: refused")
        client_end, server_end = trio.testing.memory_stream_pair()
        client_side = _make_conn(client_end, self._hub.faults, address, "client")
        server_side = _make_conn(server_end, self._hub.faults, address, "server")
        try:
            listener.send_nowait(server_side)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectError(f"memory://{self.name}/{address}: not accepting") from None
        return client_side


_client_ids: Callable[[], int] = itertools.count(1).__next__


def _make_conn(
    stream: trio.abc.Stream, faults: Faults, address: str, side: str
) -> StreamConnection:
    faulty = _FaultyStream(stream, faults, address)
    if side == "client":
        return StreamConnection(faulty, peer=address, local=f"client-{_client_ids()}")
    return StreamConnection(faulty, peer="memory-client", local=address)


async def _handle(handler: ConnectionHandler, conn: StreamConnection) -> None:
    try:
        await handler(conn)
    except SessionError as exc:
        log.info("memory connection to %s ended: %s", conn.local, exc)
    finally:
        await conn.aclose()
