"""The in-memory datagram network (trimicro.testing._paths) and the flow-control windows of
`WindowedQuicConnection`, whose aioquic internals these tests pin."""

from __future__ import annotations

import ssl

import pytest
import trio
import trio.testing
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

from trimicro.session._quic_flow import WindowedQuicConnection
from trimicro.session._quic_tls import generate_identity
from trimicro.testing._paths import SOCKET_QUEUE, MemoryNetwork, PathFaults, open_memory_network


async def test_delay_is_exact_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_network(faults=PathFaults(delay=0.05)) as net:
        a = await net.host("a").bind("", 0)
        b = await net.host("b").bind("", 7)
        assert b.local_address == ("b", 7)
        start = trio.current_time()
        await a.sendto(b"hello", ("b", 7))
        assert await b.recvfrom() == (b"hello", a.local_address)
        assert trio.current_time() - start == pytest.approx(0.05)
        await a.aclose()
        await b.aclose()


async def test_faults_follow_their_probabilities_from_a_seed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = PathFaults(delay=0.01, loss=0.3, duplicate=0.1, reorder=0.2)
    async with open_memory_network(seed=5, faults=faults) as net:
        a = await net.host("a").bind("", 0)
        b = await net.host("b").bind("", 0)
        received: list[int] = []

        async def drain() -> None:
            while True:
                data, _ = await b.recvfrom()
                received.append(int(data))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            for i in range(5000):
                await a.sendto(b"%d" % i, b.local_address)
                await trio.sleep(0.001)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        counters = net.link("a", "b").counters
        assert 1350 < counters.lost < 1650
        assert 300 < counters.duplicated < 420
        assert received != sorted(received)  # reordered
        assert (
            len(received)
            == counters.datagrams_delivered
            == 5000 - counters.lost + (counters.duplicated)
        )
        await a.aclose()
        await b.aclose()


async def test_blackouts_drop_exactly_their_window(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_network() as net:
        a = await net.host("a").bind("", 0)
        b = await net.host("b").bind("", 0)
        net.link("a", "b").faults.blackouts.append((1.0, 2.0))
        for _ in range(24):
            await a.sendto(b"x", b.local_address)
            await trio.sleep(0.125)
        assert net.link("a", "b").counters.blacked_out == 8
        assert net.link("b", "a").counters.datagrams_sent == 0
        await a.aclose()
        await b.aclose()


async def test_unread_datagrams_are_bounded_and_refusals_reach_dialled_sockets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_memory_network() as net:
        a = await net.host("a").bind("", 0)
        b = await net.host("b").bind("", 0)
        for _ in range(SOCKET_QUEUE + 44):
            await a.sendto(b"x", b.local_address)
        assert net.link("a", "b").counters.overflowed == 44
        dialled, peer = await net.host("a").dial("b", 9)
        await dialled.sendto(b"anyone?", peer)
        with pytest.raises(ConnectionRefusedError):
            await dialled.recvfrom()
        with pytest.raises(OSError, match="already bound"):
            await net.host("b").bind("", b.local_address[1])
        for sock in (a, b, dialled):
            await sock.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await a.recvfrom()


def _pair(window: int) -> tuple[WindowedQuicConnection, WindowedQuicConnection]:
    identity = generate_identity("flow")
    client = WindowedQuicConnection(
        configuration=QuicConfiguration(
            is_client=True, alpn_protocols=["t"], verify_mode=ssl.CERT_NONE, max_stream_data=window
        )
    )
    server_configuration = QuicConfiguration(
        is_client=False, alpn_protocols=["t"], max_stream_data=window
    )
    server_configuration.certificate = identity.certificate
    server_configuration.private_key = identity.private_key
    client.connect(("server", 1), now=_clock[0])
    first = client.datagrams_to_send(now=_clock[0])
    server = WindowedQuicConnection(
        configuration=server_configuration,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    for data, _ in first:
        server.receive_datagram(data, ("client", 1), now=_clock[0])
    _pump(client, server)
    return client, server


_clock = [0.0]  # the pump's time: 5 ms a round, so pacing and ACK timers move on


def _pump(client: WindowedQuicConnection, server: WindowedQuicConnection) -> int:
    """Move datagrams both ways until quiet; the stream bytes the server received."""
    received = 0
    for _ in range(1000):
        _clock[0] += 0.005
        moved = 0
        for sender, receiver, addr in ((client, server, "client"), (server, client, "server")):
            for data, _ in sender.datagrams_to_send(now=_clock[0]):
                receiver.receive_datagram(data, (addr, 1), now=_clock[0])
                moved += 1
        while (event := server.next_event()) is not None:
            if isinstance(event, StreamDataReceived):
                received += len(event.data)
        if not moved and all(c.get_timer() > _clock[0] + 1 for c in (client, server)):
            return received
    raise AssertionError("the connections never went quiet")


def test_the_receive_window_moves_only_as_the_application_consumes() -> None:
    window = 64 * 1024
    client, server = _pair(window)
    client.send_stream_data(2, b"x" * (4 * window))
    assert _pump(client, server) == window  # aioquic alone would have doubled the window
    assert client.send_buffered(2) == 3 * window  # the first window is acknowledged
    assert not server.consume(2, window // 4)  # less than half a window: no update yet
    assert server.consume(2, window // 4)
    assert _pump(client, server) == window // 2
    assert client.send_buffered(2) == 5 * window // 2


def test_a_peer_may_open_one_unidirectional_stream_and_no_bidirectional_one() -> None:
    client, server = _pair(64 * 1024)
    client.send_stream_data(0, b"bidirectional")  # the client's first bidirectional stream
    client.send_stream_data(2, b"ours")
    client.send_stream_data(6, b"a second unidirectional stream")
    assert _pump(client, server) == len(b"ours")  # the peer's aioquic held the others back
    assert client._remote_max_streams_bidi == 0
    assert client._remote_max_streams_uni == 1
    assert set(server._streams) == {2}


async def test_memory_network_runs_a_quic_handshake_under_mock_clock(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = MemoryNetwork(faults=PathFaults(delay=0.25))
    nursery.start_soon(net.run)
    from trimicro.session._quic_transport import QuicTransport

    server = QuicTransport(network=net.host("127.0.0.1"))
    client = QuicTransport(network=net.host("127.0.0.1"))

    async def hello(conn) -> None:
        await conn.send({"hello": "there"})
        await trio.sleep_forever()

    bound = await nursery.start(server.serve, hello, "127.0.0.1:0")
    conn = await client.connect(nursery, bound)
    assert trio.current_time() == pytest.approx(0.5)
    assert await conn.receive() == {"hello": "there"}  # the server may speak first
    nursery.cancel_scope.cancel()
