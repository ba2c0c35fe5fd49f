"""Session data keeps its order across a tunnel link's two send paths on QUIC: the flush
right before the connection builds packets (`send_nowait` of what was queued meanwhile) and
the link's writer task (`send`, for what the connection could not take: the QUIC send
buffer is full because the reader on the other side is slow).

Two tunnels over QuicTransport, on real loopback UDP (as bench/tunnel.py) and on the
in-memory datagram network in virtual time. The sender's link connection is wrapped to
record which path each frame took; nothing in the tunnel is patched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
import trio.testing

from trimicro.session import Connection, ConnectionHandler
from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import Tunnel, open_tunnel
from trimicro.testing._paths import open_memory_network

IDENTITY = generate_identity("tunnel-link-order")
COUNT = 3000
SIZE = 2048
SLOW = range(200, 500)  # the reader sleeps 2 ms before taking each of these, then is fast


class _RecordingConnection:
    """A link's connection that records each frame's path: ("nowait" | "refused" | "send",
    the message type, the sequence numbers of the session data it carries)."""

    def __init__(self, inner: Connection) -> None:
        self._inner = inner
        self.log: list[tuple[str, str, list[int]]] = []

    def __getattr__(self, name: str) -> Any:  # peer, local, the QUIC stream for auth
        return getattr(self._inner, name)

    async def send(self, message: Mapping[str, Any]) -> None:
        self.log.append(("send", message["t"], _seqs(message)))
        await self._inner.send(message)

    def send_nowait(self, message: Mapping[str, Any]) -> bool:
        sent: bool = self._inner.send_nowait(message)  # type: ignore[attr-defined]
        self.log.append(("nowait" if sent else "refused", message["t"], _seqs(message)))
        return sent

    async def receive(self) -> dict[str, Any]:
        return await self._inner.receive()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _seqs(message: Mapping[str, Any]) -> list[int]:
    if message["t"] == "session":
        return [_seq(message["data"])]
    if message["t"] == "batch":
        return [_seq(data) for run in message["runs"] for data in run[4]]
    return []


def _seq(data: bytes) -> int:
    return int.from_bytes(data[:4], "big")


class _Recording:
    """A QuicTransport whose connections are `_RecordingConnection`s."""

    def __init__(self, inner: QuicTransport) -> None:
        self._inner = inner
        self.conns: list[_RecordingConnection] = []

    def __getattr__(self, name: str) -> Any:  # scheme, identity
        return getattr(self._inner, name)

    def _wrap(self, conn: Connection) -> _RecordingConnection:
        wrapped = _RecordingConnection(conn)
        self.conns.append(wrapped)
        return wrapped

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def wrapped(conn: Connection) -> None:
            await handler(self._wrap(conn))

        await self._inner.serve(wrapped, address, task_status=task_status)

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        return self._wrap(await self._inner.connect(nursery, address))


async def _sink(tunnel: Tunnel, got: list[int], done: trio.Event) -> None:
    async with tunnel.listen("sink") as listener:
        session = await listener.accept()
        async with session:
            while len(got) < COUNT:
                if len(got) in SLOW:
                    await trio.sleep(0.002)
                data = await session.receive()
                assert len(data) == SIZE
                got.append(_seq(data))
    done.set()


async def _run(server_quic: QuicTransport, client_quic: QuicTransport, host: str) -> None:
    """The sink listens on tunnel a (on `server_quic`); b dials it and sends `COUNT`
    numbered messages as fast as it can. Checks what arrived and which paths carried it."""
    got: list[int] = []
    done = trio.Event()
    recording = _Recording(client_quic)
    with trio.fail_after(10):  # a lost message: the sink waits for it forever
        async with (
            open_tunnel(server_quic, address=f"{host}:0") as a,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_sink, a, got, done)
            pin = f"{a.address}?cert_sha256={IDENTITY.cert_sha256}"
            async with open_tunnel(recording, peers=[pin]) as b:
                await b.wait_links(1)
                while "sink" not in b.announced():
                    await b.wait_announced()
                async with await b.dial("sink") as session:
                    padding = b"\xa5" * (SIZE - 4)
                    for i in range(COUNT):
                        await session.send(i.to_bytes(4, "big") + padding)
                    await done.wait()
            nursery.cancel_scope.cancel()
    assert got == list(range(COUNT))  # every message once, in order

    (conn,) = recording.conns
    data = [(path, seqs) for path, kind, seqs in conn.log if kind in ("session", "batch")]
    # Every message left the sender once, in order, whichever path carried it (a refused
    # frame went back to the queue and left later).
    assert [seq for path, seqs in data if path != "refused" for seq in seqs] == list(range(COUNT))
    paths = [path for path, _ in data]
    assert "refused" in paths  # the QUIC send buffer filled up: the writer took over...
    first_send = paths.index("send")
    assert "nowait" in paths[:first_send]  # ...after data went out in flushes...
    assert "nowait" in paths[first_send:]  # ...and once the backlog was gone, it did again


async def test_order_across_the_flush_and_the_writer_over_loopback_udp() -> None:
    await _run(QuicTransport(identity=IDENTITY), QuicTransport(), "127.0.0.1")


async def test_order_across_the_flush_and_the_writer_in_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_memory_network() as net:
        server = QuicTransport(network=net.host("10.0.0.1"), identity=IDENTITY)
        client = QuicTransport(network=net.host("10.0.0.2"))
        await _run(server, client, "10.0.0.1")
