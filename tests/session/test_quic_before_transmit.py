"""`call_before_transmit`: a QUIC connection runs a writer's callback right before it builds
packets, once per transmission however often it was asked, and what the callback writes
goes out in those packets (the tunnel's link flush relies on all of it)."""

from __future__ import annotations

import trio
import trio.testing

from trimicro.session import Connection, ConnectionClosed
from trimicro.session._memory import MemoryTransport
from trimicro.session._quic_stream import QuicByteStream
from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicTransport
from trimicro.session._stream import StreamConnection
from trimicro.testing._paths import open_memory_network

IDENTITY = generate_identity("test-node")


async def _collect(conn: Connection, into: list[dict[str, object]]) -> None:
    try:
        while True:
            into.append(await conn.receive())
    except ConnectionClosed:
        pass


async def _idle(conn: Connection) -> None:
    await trio.sleep_forever()


async def test_callback_runs_once_per_transmission_and_its_writes_arrive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    received: list[dict[str, object]] = []
    async with open_memory_network() as net, trio.open_nursery() as nursery:
        server = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
        bound = await nursery.start(server.serve, lambda c: _collect(c, received), "127.0.0.1:0")
        conn = await QuicTransport(network=net.host("127.0.0.1")).connect(nursery, bound)
        assert isinstance(conn, StreamConnection)
        pending: list[int] = []
        calls: list[list[int]] = []

        def flush() -> None:
            calls.append(list(pending))
            for i in pending:
                assert conn.send_nowait({"i": i})
            pending.clear()

        for i in range(5):  # asked five times before the connection's task runs
            pending.append(i)
            assert conn.call_before_transmit(flush)
        with trio.fail_after(5):
            while len(received) < 5:
                await trio.sleep(0.01)
        assert calls == [[0, 1, 2, 3, 4]]  # one call, after every request of the round
        assert [m["i"] for m in received] == [0, 1, 2, 3, 4]

        pending.append(5)
        assert conn.call_before_transmit(flush)  # a later transmission calls it again
        with trio.fail_after(5):
            while len(received) < 6:
                await trio.sleep(0.01)
        assert calls == [[0, 1, 2, 3, 4], [5]]
        await conn.aclose()
        assert not conn.call_before_transmit(flush)  # closed: nothing arranged
        nursery.cancel_scope.cancel()


async def test_a_round_of_writes_shares_packets(autojump_clock: trio.testing.MockClock) -> None:
    """200 small messages framed in one callback leave in a few datagrams, not 200."""
    received: list[dict[str, object]] = []
    async with open_memory_network() as net, trio.open_nursery() as nursery:
        server = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
        bound = await nursery.start(server.serve, lambda c: _collect(c, received), "127.0.0.1:0")
        client = QuicTransport(network=net.host("127.0.0.1"))
        conn = await client.connect(nursery, bound)
        assert isinstance(conn, StreamConnection)
        await trio.sleep(1)  # the handshake's datagrams are out of the count
        before = client.statistics().datagrams_out

        def flush() -> None:
            for i in range(200):
                assert conn.send_nowait({"i": i, "b": b"x" * 40})

        assert conn.call_before_transmit(flush)
        with trio.fail_after(5):
            while len(received) < 200:
                await trio.sleep(0.01)
        assert [m["i"] for m in received] == list(range(200))
        assert client.statistics().datagrams_out - before <= 20
        nursery.cancel_scope.cancel()


async def test_streams_without_it_say_so(autojump_clock: trio.testing.MockClock) -> None:
    """A memory stream has no packets to wait for: nothing is arranged, the caller uses
    `send` (the tunnel's link writer)."""
    transport = MemoryTransport("before-transmit")
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, _idle, "a")
        conn = await transport.connect(nursery, bound)
        assert isinstance(conn, StreamConnection)
        assert not conn.call_before_transmit(lambda: None)
        assert not conn.send_nowait({"i": 1})
        nursery.cancel_scope.cancel()


def test_the_byte_stream_refuses_once_closed_for_sending() -> None:
    class Host:
        quic = None
        asked = 0

        def request_transmit(self) -> None: ...

        def call_before_transmit(self, callback: object) -> None:
            self.asked += 1

        def close_gracefully(self) -> None: ...

    host = Host()
    stream = QuicByteStream(host, 2, 3)  # type: ignore[arg-type]
    assert stream.call_before_transmit(lambda: None)
    stream.fail_send("reset by peer")
    assert not stream.call_before_transmit(lambda: None)
    assert host.asked == 1
