"""QUIC over an in-memory datagram path with faults, in virtual time (MockClock): exact handshake
timing, loss, blackouts, long round trips, anti-amplification, and a server that keeps
serving through garbage, a wrong ALPN and a peer that stops reading."""

from __future__ import annotations

import hashlib
import math
import random

import pytest
import trio
import trio.testing

from trimicro.session import ConnectError, Connection, ConnectionClosed
from trimicro.session._quic_stream import SEND_BUFFER
from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import STREAM_WINDOW, QuicOptions, QuicTransport
from trimicro.testing._paths import MemoryNetwork, PathFaults

IDENTITY = generate_identity("server")
SERVER, CLIENT = "10.0.0.1", "10.0.0.2"
CHUNK = 64 * 1024


async def echo(conn: Connection) -> None:
    try:
        while True:
            await conn.send(await conn.receive())
    except ConnectionClosed:
        pass


async def sink(conn: Connection) -> None:
    """Hashes every chunk it receives; answers {"sha256", "size"} to {"done": True}."""
    digest, size = hashlib.sha256(), 0
    try:
        while True:
            message = await conn.receive()
            if message.get("done"):
                await conn.send({"sha256": digest.hexdigest(), "size": size})
            else:
                digest.update(message["chunk"])
                size += len(message["chunk"])
    except ConnectionClosed:
        pass


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def transfer(conn: Connection, data: bytes, halfway=lambda: None) -> None:
    """Stream `data` to a `sink` in 64 KiB messages and check what arrived."""
    for start in range(0, len(data), CHUNK):
        if start <= len(data) // 2 < start + CHUNK:
            halfway()
        await conn.send({"chunk": data[start : start + CHUNK]})
    await conn.send({"done": True})
    assert await conn.receive() == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


async def start(
    nursery: trio.Nursery, net: MemoryNetwork, handler=echo, **options
) -> tuple[QuicTransport, QuicTransport, str]:
    """A server on SERVER and a client transport on CLIENT; the server's pinned address."""
    server = QuicTransport(network=net.host(SERVER), identity=IDENTITY)
    client = QuicTransport(QuicOptions(**options), network=net.host(CLIENT))
    bound = await nursery.start(server.serve, handler, f"{SERVER}:0")
    return server, client, f"{bound}?cert_sha256={IDENTITY.cert_sha256}"


def network(nursery: trio.Nursery, seed: int = 0, **faults) -> MemoryNetwork:
    net = MemoryNetwork(seed=seed, faults=PathFaults(**faults))
    nursery.start_soon(net.run)
    return net


async def test_handshake_and_round_trip_times_are_exact(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.05)
    _, client, address = await start(nursery, net)
    begin = trio.current_time()
    conn = await client.connect(nursery, address)
    assert trio.current_time() - begin == pytest.approx(0.10)  # one round trip
    await conn.send({"ping": 1})
    assert await conn.receive() == {"ping": 1}
    # The request leaves with the client's Finished; the server answers on completing.
    assert trio.current_time() - begin == pytest.approx(0.20)
    nursery.cancel_scope.cancel()


async def test_thirty_percent_loss_each_way_fifty_of_fifty_handshakes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, seed=3, delay=0.02, loss=0.3)
    _, client, address = await start(nursery, net, dial_timeout=30.0)
    outcomes: list[str] = []

    async def call(i: int) -> None:
        try:
            conn = await client.connect(nursery, address)
            await conn.send({"call": i})
            assert await conn.receive() == {"call": i}
            await conn.aclose()
            outcomes.append("ok")
        except ConnectError as exc:
            outcomes.append(str(exc))

    async with trio.open_nursery() as calls:
        for i in range(50):
            calls.start_soon(call, i)
    assert [o for o in outcomes if o != "ok"] == []
    assert len(outcomes) == 50
    assert net.link(CLIENT, SERVER).counters.lost > 0
    assert net.link(SERVER, CLIENT).counters.lost > 0
    nursery.cancel_scope.cancel()


async def test_two_megabytes_arrive_intact_at_two_percent_loss(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, seed=7, delay=0.01, loss=0.02, reorder=0.02, duplicate=0.01)
    _, client, address = await start(nursery, net, handler=sink)
    conn = await client.connect(nursery, address)
    await transfer(conn, payload(2_000_000))
    assert net.link(CLIENT, SERVER).counters.lost > 10
    nursery.cancel_scope.cancel()


async def test_a_two_second_blackout_mid_transfer_loses_nothing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, seed=1, delay=0.01)
    _, client, address = await start(nursery, net, handler=sink)
    conn = await client.connect(nursery, address)
    blackout: list[float] = []

    def go_dark() -> None:
        now = trio.current_time()
        blackout.append(now)
        for link in (net.link(CLIENT, SERVER), net.link(SERVER, CLIENT)):
            link.faults.blackouts.append((now, now + 2.0))

    await transfer(conn, payload(2_000_000, seed=2), halfway=go_dark)
    assert trio.current_time() > blackout[0] + 2.0  # the transfer really spanned it
    assert net.link(CLIENT, SERVER).counters.blacked_out > 0
    assert net.link(SERVER, CLIENT).counters.blacked_out > 0
    nursery.cancel_scope.cancel()


async def test_a_one_and_a_half_second_round_trip_path_works(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.75)
    _, client, address = await start(nursery, net, handler=sink)
    begin = trio.current_time()
    conn = await client.connect(nursery, address)
    assert trio.current_time() - begin == pytest.approx(1.5)
    await transfer(conn, payload(300_000))
    nursery.cancel_scope.cancel()


async def test_anti_amplification_before_the_address_is_validated(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.02)
    server, client, address = await start(nursery, net, dial_timeout=10.0)
    up, down = net.link(CLIENT, SERVER), net.link(SERVER, CLIENT)
    # The client's first datagram arrives, nothing else does either way: the server never
    # validates the client's address and keeps probing (PTO) into the void.
    up.faults.blackouts.append((0.001, math.inf))
    down.faults.blackouts.append((0.0, math.inf))
    with pytest.raises(ConnectError, match="no handshake within 10 s"):
        await client.connect(nursery, address)
    assert up.counters.datagrams_delivered == 1
    assert down.counters.datagrams_sent >= 3  # it did retransmit...
    assert down.counters.bytes_sent <= 3 * up.counters.bytes_delivered  # ...within 3x
    assert server.statistics().bytes_out <= 3 * server.statistics().bytes_in
    nursery.cancel_scope.cancel()


async def test_garbage_floods_do_not_stop_the_server_or_cost_it_state(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.005)
    server, client, address = await start(nursery, net)
    attacker = await net.host("10.6.6.6").bind("", 0)
    rng = random.Random(0)
    target = (SERVER, int(address.split("?")[0].rsplit(":", 1)[1]))
    for i in range(3000):
        size = rng.choice([1, 40, 1200, 1500])
        junk = bytearray(rng.randbytes(size))
        if i % 2:  # half look like long-header Initials of QUIC v1, full size
            junk[0], junk[1:5] = 0xC0 | (junk[0] & 0x0F), (1).to_bytes(4, "big")
        await attacker.sendto(bytes(junk), target)
        if i % 100 == 0:
            await trio.sleep(0.001)
    conn = await client.connect(nursery, address)
    await conn.send({"still": "serving"})
    assert await conn.receive() == {"still": "serving"}
    assert server.statistics().connections_open == 1  # the garbage left no connection behind
    await attacker.aclose()
    nursery.cancel_scope.cancel()


async def test_a_wrong_alpn_is_refused_and_others_are_served(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.005)
    server, client, address = await start(nursery, net)
    stranger = QuicTransport(QuicOptions(alpn="h3"), network=net.host("10.0.0.9"))
    with pytest.raises(ConnectError, match=r"cannot connect to 10\.0\.0\.1:.*ALPN"):
        await stranger.connect(nursery, address)
    conn = await client.connect(nursery, address)
    await conn.send({"alpn": "trimicro/1"})
    assert await conn.receive() == {"alpn": "trimicro/1"}
    assert server.statistics().handshakes_failed == 1
    nursery.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_costs_bounded_memory(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.005)
    blocked = trio.Event()
    server_streams = []

    async def firehose(conn: Connection) -> None:
        server_streams.append(conn._stream)  # type: ignore[attr-defined]
        message = await conn.receive()
        if message.get("firehose"):
            for _ in range(1000):  # 64 MB, far beyond every window and buffer
                with trio.move_on_after(1) as scope:
                    await conn.send({"chunk": b"x" * CHUNK})
                if scope.cancelled_caught:
                    blocked.set()
                    await trio.sleep_forever()
        await conn.send(message)
        await echo(conn)

    _, client, address = await start(nursery, net, handler=firehose)
    lazy = await client.connect(nursery, address)
    await lazy.send({"firehose": True})  # ...and never reads again
    await blocked.wait()
    held_by_client = lazy._stream._queued  # type: ignore[attr-defined]
    held_by_server = server_streams[0]._host.quic.send_buffered(server_streams[0].send_id)
    assert held_by_client <= STREAM_WINDOW
    assert held_by_server <= SEND_BUFFER + CHUNK + 100
    other = await client.connect(nursery, address)
    await other.send({"other": "client"})
    assert await other.receive() == {"other": "client"}
    nursery.cancel_scope.cancel()


async def test_cancelled_send_leaves_the_connection_usable(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.005)
    _, client, address = await start(nursery, net)
    conn = await client.connect(nursery, address)
    # Nothing reads the echoes: the server's sends block, then it stops reading, then ours do.
    cancelled = 0
    for i in range(200):
        with trio.move_on_after(0.5) as scope:
            await conn.send({"i": i, "pad": b"p" * CHUNK})
        if scope.cancelled_caught:
            cancelled = i
            break
    assert cancelled, "the sender never blocked"
    for i in range(cancelled):  # every frame that was sent comes back whole and in order
        assert (await conn.receive())["i"] == i
    await conn.send({"after": "cancel"})
    assert await conn.receive() == {"after": "cancel"}
    nursery.cancel_scope.cancel()


async def test_keepalive_holds_an_idle_connection_open_past_the_idle_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.01)
    _, client, address = await start(nursery, net)
    conn = await client.connect(nursery, address)
    await trio.sleep(300)  # five idle timeouts of aioquic's 60 s
    await conn.send({"after": "idle"})
    assert await conn.receive() == {"after": "idle"}
    nursery.cancel_scope.cancel()


async def test_a_dead_peer_is_noticed_by_the_idle_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = network(nursery, delay=0.01)
    _, client, address = await start(nursery, net)
    conn = await client.connect(nursery, address)
    for link in (net.link(CLIENT, SERVER), net.link(SERVER, CLIENT)):
        link.faults.loss = 1.0
    with trio.fail_after(120), pytest.raises(ConnectionClosed, match="Idle timeout"):
        await conn.receive()
    nursery.cancel_scope.cancel()
