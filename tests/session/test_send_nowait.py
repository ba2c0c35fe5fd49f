"""The synchronous write path: `QuicByteStream.send_all_nowait` writes at once or writes
nothing, and `StreamConnection.send_nowait` sends a frame at once only when no `send` is
writing, so frames keep the order they were given whichever method sent them.

QUIC runs over the in-memory datagram network in virtual time (MockClock): a blackout of the
path keeps acknowledgements from arriving, which holds the send buffer full."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
import trio
import trio.testing

from trimicro.session import Connection, ConnectionClosed
from trimicro.session._protocol import FrameDecoder
from trimicro.session._quic_stream import SEND_BUFFER, QuicByteStream
from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicTransport
from trimicro.session._stream import StreamConnection
from trimicro.testing._paths import MemoryNetwork, PathFaults

IDENTITY = generate_identity("send-nowait")
SERVER, CLIENT = "10.0.0.1", "10.0.0.2"


# -- helpers --------------------------------------------------------------------------------


def _network(nursery: trio.Nursery) -> MemoryNetwork:
    net = MemoryNetwork(seed=0, faults=PathFaults(delay=0.005))
    nursery.start_soon(net.run)
    return net


async def _quic_pair(nursery: trio.Nursery, net: MemoryNetwork) -> tuple[Connection, Connection]:
    """(client, server) connections of one QUIC connection; the server's handler idles."""
    server = QuicTransport(network=net.host(SERVER), identity=IDENTITY)
    client = QuicTransport(network=net.host(CLIENT))
    accepted_send, accepted = trio.open_memory_channel[Connection](1)

    async def handler(conn: Connection) -> None:
        await accepted_send.send(conn)
        await trio.sleep_forever()

    bound = await nursery.start(server.serve, handler, f"{SERVER}:0")
    conn = await client.connect(nursery, f"{bound}?cert_sha256={IDENTITY.cert_sha256}")
    return conn, await accepted.receive()


def _stream(conn: Connection) -> QuicByteStream:
    stream = conn._stream  # type: ignore[attr-defined]
    assert isinstance(stream, QuicByteStream)
    return stream


def _buffered(stream: QuicByteStream) -> int:
    """Bytes written to the stream and not yet acknowledged (aioquic's send buffer)."""
    return stream._host.quic.send_buffered(stream.send_id)


async def _read_exactly(stream: QuicByteStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        assert chunk, f"end of stream after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def _blackout(net: MemoryNetwork) -> None:
    """From now on nothing crosses the path either way (until `_lift`)."""
    now = trio.current_time()
    for link in (net.link(CLIENT, SERVER), net.link(SERVER, CLIENT)):
        link.faults.blackouts.append((now, math.inf))


def _lift(net: MemoryNetwork) -> None:
    for link in (net.link(CLIENT, SERVER), net.link(SERVER, CLIENT)):
        link.faults.blackouts.clear()


# -- QuicByteStream.send_all_nowait ---------------------------------------------------------


async def test_send_all_nowait_writes_at_once_and_the_peer_receives_it(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    client, server = await _quic_pair(nursery, _network(nursery))
    ours, theirs = _stream(client), _stream(server)
    before = _buffered(ours)
    assert ours.send_all_nowait(b"hello") is True
    assert _buffered(ours) == before + 5  # written synchronously, before any checkpoint
    assert ours.send_all_nowait(bytearray(b", ")) is True
    assert ours.send_all_nowait(memoryview(b"world")) is True
    assert await _read_exactly(theirs, 12) == b"hello, world"
    # ...and it is the same byte stream `send_all` writes to: in the order of the calls.
    await ours.send_all(b"|async|")
    assert ours.send_all_nowait(b"sync") is True
    assert await _read_exactly(theirs, 11) == b"|async|sync"
    nursery.cancel_scope.cancel()


async def test_send_all_nowait_refuses_over_the_send_buffer_and_writes_nothing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = _network(nursery)
    client, server = await _quic_pair(nursery, net)
    ours, theirs = _stream(client), _stream(server)
    _blackout(net)  # no acknowledgement can arrive: the buffer only grows
    fill = b"a" * SEND_BUFFER
    assert ours.send_all_nowait(fill) is True  # exactly at the limit: not over it
    assert ours.send_all_nowait(b"b" * 10) is True  # one more write of any size is taken
    held = _buffered(ours)
    assert held > SEND_BUFFER
    for _ in range(3):
        assert ours.send_all_nowait(b"REFUSED") is False
        assert _buffered(ours) == held  # nothing was written
    await trio.sleep(5)  # retransmissions into the void change nothing
    assert ours.send_all_nowait(b"REFUSED") is False
    assert _buffered(ours) == held
    # The path comes back, acknowledgements arrive, the buffer drains: writes are taken.
    _lift(net)
    received = bytearray()

    async def reader() -> None:
        received.extend(await _read_exactly(theirs, len(fill) + 10))

    async with trio.open_nursery() as readers:
        readers.start_soon(reader)
        with trio.fail_after(30):
            await ours.wait_send_all_might_not_block()
    assert _buffered(ours) <= SEND_BUFFER
    assert ours.send_all_nowait(b"c") is True
    assert bytes(received) == fill + b"b" * 10
    assert await _read_exactly(theirs, 1) == b"c"  # and not a byte of the refused writes
    nursery.cancel_scope.cancel()


async def test_send_all_nowait_refuses_while_a_task_is_inside_send_all(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = _network(nursery)
    client, server = await _quic_pair(nursery, net)
    ours, theirs = _stream(client), _stream(server)
    _blackout(net)
    fill = b"a" * (SEND_BUFFER + 1)
    assert ours.send_all_nowait(fill) is True
    sent = trio.Event()

    async def send_all() -> None:
        await ours.send_all(b"X")
        sent.set()

    nursery.start_soon(send_all)
    await trio.testing.wait_all_tasks_blocked()
    assert not sent.is_set()  # waiting for room: X is not written yet
    # Room alone is not enough: with the limit raised the buffer has room, but a task is in
    # `send_all` with X, and a write now would overtake it.
    ours._send_buffer = 10 * SEND_BUFFER
    held = _buffered(ours)
    assert ours.send_all_nowait(b"Y") is False
    assert _buffered(ours) == held
    _lift(net)
    with trio.fail_after(30):
        assert await _read_exactly(theirs, len(fill) + 1) == fill + b"X"
        await sent.wait()
    assert ours.send_all_nowait(b"Z") is True  # send_all is over: writes are taken again
    assert await _read_exactly(theirs, 1) == b"Z"  # no Y in between
    nursery.cancel_scope.cancel()


async def test_send_all_nowait_refuses_after_send_eof_and_on_a_closed_stream(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = _network(nursery)
    client, server = await _quic_pair(nursery, net)
    ours, theirs = _stream(client), _stream(server)
    assert ours.send_all_nowait(b"before eof") is True
    await ours.send_eof()
    held = _buffered(ours)
    assert ours.send_all_nowait(b"after eof") is False
    assert _buffered(ours) == held
    assert await _read_exactly(theirs, 10) == b"before eof"
    assert await theirs.receive_some() == b""  # the FIN follows: nothing after it

    client2, server2 = await _quic_pair(nursery, net)
    ours2, theirs2 = _stream(client2), _stream(server2)
    assert ours2.send_all_nowait(b"before close") is True
    await ours2.aclose()
    held = _buffered(ours2)
    assert ours2.send_all_nowait(b"after close") is False
    assert _buffered(ours2) == held
    assert await _read_exactly(theirs2, 12) == b"before close"
    assert await theirs2.receive_some() == b""
    nursery.cancel_scope.cancel()


async def test_send_all_nowait_refuses_after_a_send_error(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    client, server = await _quic_pair(nursery, _network(nursery))
    ours, theirs = _stream(client), _stream(server)
    assert ours.send_all_nowait(b"ok") is True
    assert await _read_exactly(theirs, 2) == b"ok"
    theirs._host.kill("the peer gave up")  # type: ignore[attr-defined]  # CONNECTION_CLOSE
    with trio.fail_after(5), pytest.raises(trio.BrokenResourceError, match="gave up"):
        await ours.receive_some()  # the close arrived: both directions are broken
    held = _buffered(ours)
    assert ours.send_all_nowait(b"lost") is False
    assert _buffered(ours) == held
    with pytest.raises(trio.BrokenResourceError, match="gave up"):
        await ours.send_all(b"lost")  # what the caller falls back to raises the error
    nursery.cancel_scope.cancel()


class _FakeQuic:
    def __init__(self) -> None:
        self.buffered = 0
        self.written: list[bytes] = []

    def send_buffered(self, stream_id: int) -> int:
        return self.buffered

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.written.append(data)
        self.buffered += len(data)


class _FakeHost:
    def __init__(self) -> None:
        self.quic = _FakeQuic()
        self.transmits = 0

    def request_transmit(self) -> None:
        self.transmits += 1

    def close_gracefully(self) -> None:
        pass


async def test_send_all_nowait_honours_a_small_send_buffer_exactly() -> None:
    host = _FakeHost()
    stream = QuicByteStream(host, 2, 3, send_buffer=100)  # type: ignore[arg-type]
    assert stream.send_all_nowait(b"x" * 60) is True
    assert stream.send_all_nowait(b"y" * 40) is True  # 100 held: at the limit, not over
    assert stream.send_all_nowait(b"z") is True
    assert stream.send_all_nowait(b"w") is False  # 101 held: over
    assert host.quic.written == [b"x" * 60, b"y" * 40, b"z"]
    assert host.transmits == 3  # each write asked for a transmission; the refusal did not
    host.quic.buffered = 0  # acknowledged
    assert stream.send_all_nowait(b"v") is True
    stream.fail_send("reset by peer")
    assert stream.send_all_nowait(b"u") is False
    assert host.quic.written == [b"x" * 60, b"y" * 40, b"z", b"v"]
    assert host.transmits == 4


async def test_send_all_nowait_refuses_once_closed_even_before_the_fin() -> None:
    host = _FakeHost()  # its close_gracefully writes no FIN: only the stream knows
    stream = QuicByteStream(host, 2, 3, send_buffer=100)  # type: ignore[arg-type]
    assert stream.send_all_nowait(b"open") is True
    await stream.aclose()
    assert stream.send_all_nowait(b"closed") is False
    assert host.quic.written == [b"open"]


# -- StreamConnection.send_nowait -----------------------------------------------------------


async def test_send_nowait_over_a_memory_stream_refuses_and_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = trio.testing.memory_stream_pair()
    conn, peer = StreamConnection(left, "right"), StreamConnection(right, "left")
    assert conn.send_nowait({"n": 1}) is False  # the stream cannot write without waiting
    await conn.send({"n": 2})
    assert await peer.receive() == {"n": 2}
    with trio.move_on_after(1) as scope:
        await peer.receive()  # nothing else is on the way
    assert scope.cancelled_caught
    await conn.aclose()
    await peer.aclose()


async def test_send_nowait_over_quic_is_received_in_order_with_send(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    client, server = await _quic_pair(nursery, _network(nursery))
    assert client.send_nowait({"i": 0}) is True  # type: ignore[attr-defined]
    assert await server.receive() == {"i": 0}
    assert client.send_nowait({"i": 1}) is True  # type: ignore[attr-defined]
    await client.send({"i": 2})
    assert client.send_nowait({"i": 3, "data": b"\x00" * 5000}) is True  # type: ignore[attr-defined]
    assert [await server.receive() for _ in range(3)] == [
        {"i": 1},
        {"i": 2},
        {"i": 3, "data": b"\x00" * 5000},
    ]
    nursery.cancel_scope.cancel()


async def test_send_nowait_refuses_on_a_closed_connection(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    client, server = await _quic_pair(nursery, _network(nursery))
    assert client.send_nowait({"i": 0}) is True  # type: ignore[attr-defined]
    await client.aclose()
    assert client.send_nowait({"i": 1}) is False  # type: ignore[attr-defined]
    assert await server.receive() == {"i": 0}
    with trio.fail_after(5), pytest.raises(ConnectionClosed):
        await server.receive()  # the end of the stream, not {"i": 1}
    nursery.cancel_scope.cancel()


class _GatedStream(trio.abc.Stream):
    """Bytes go to `wire`. While the gate is shut `send_all` waits and `send_all_nowait`
    refuses (as a full QUIC send buffer); while it is open both write. Unlike a QUIC stream,
    `send_all_nowait` does not look for a task in `send_all`: the order is the connection's
    to keep."""

    def __init__(self) -> None:
        self.wire = bytearray()
        self.shut = False
        self.inside = 0  # tasks in send_all
        self._opened = trio.lowlevel.ParkingLot()
        self.nowait_writes = 0

    def open_gate(self) -> None:
        self.shut = False
        self._opened.unpark_all()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.inside += 1
        try:
            await trio.lowlevel.checkpoint()
            while self.shut:
                await self._opened.park()
            self.wire += data
        finally:
            self.inside -= 1

    def send_all_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        if self.shut:
            return False
        self.wire += data
        self.nowait_writes += 1
        return True

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()

    def frames(self) -> list[dict[str, Any]]:
        decoder = FrameDecoder()
        decoder.receive_data(bytes(self.wire))
        messages = []
        while (message := decoder.next_message()) is not None:
            messages.append(message)
        return messages


async def test_send_nowait_refuses_while_send_is_the_group_commit_writer(
    nursery: trio.Nursery,
) -> None:
    stream = _GatedStream()
    conn = StreamConnection(stream, "peer")
    assert conn.send_nowait({"i": 0}) is True  # nobody is writing: straight to the stream
    assert stream.frames() == [{"i": 0}]
    stream.shut = True
    nursery.start_soon(conn.send, {"i": 1})  # becomes the writer, held in send_all
    await trio.testing.wait_all_tasks_blocked()
    assert stream.inside == 1
    stream.shut = False  # the stream would take a write now (its writer not yet woken)...
    assert conn.send_nowait({"i": 2}) is False  # ...but {"i": 1} is to be written first
    stream.shut = True
    assert stream.frames() == [{"i": 0}]
    nursery.start_soon(conn.send, {"i": 2})  # joins the writer's next batch
    await trio.testing.wait_all_tasks_blocked()
    assert conn.send_nowait({"i": 3}) is False  # the writer still has a batch to write
    nursery.start_soon(conn.send, {"i": 3})
    await trio.testing.wait_all_tasks_blocked()
    stream.open_gate()
    await trio.testing.wait_all_tasks_blocked()
    assert stream.inside == 0
    assert conn.send_nowait({"i": 4}) is True  # the writer is done
    assert stream.frames() == [{"i": i} for i in range(5)]
    assert stream.nowait_writes == 2


async def test_send_nowait_refuses_once_the_connection_is_closed() -> None:
    stream = _GatedStream()  # would take a write even after aclose
    conn = StreamConnection(stream, "peer")
    assert conn.send_nowait({"i": 0}) is True
    await conn.aclose()
    assert conn.send_nowait({"i": 1}) is False
    assert stream.frames() == [{"i": 0}]


@pytest.mark.parametrize("seed", range(5))
async def test_frames_keep_the_order_given_when_send_and_send_nowait_interleave(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    """Four producers take a sequence number and at once (no checkpoint between) try
    `send_nowait`, falling back to `send`; meanwhile the gate opens and shuts at random. The
    wire must carry the numbers in order: the order in which the frames were given."""
    rng = random.Random(seed)
    stream = _GatedStream()
    conn = StreamConnection(stream, "peer")
    numbers = itertools.count()
    paths = {"nowait": 0, "send": 0}

    async def producer() -> None:
        for _ in range(250):
            message = {"seq": next(numbers), "pad": b"p" * rng.randrange(0, 300)}
            if conn.send_nowait(message):
                paths["nowait"] += 1
            else:
                paths["send"] += 1
                await conn.send(message)
            await trio.sleep(rng.choice([0, 0, 0.001, 0.003]))

    async def gatekeeper() -> None:
        while True:
            stream.shut = rng.random() < 0.5
            if not stream.shut:
                stream.open_gate()
            await trio.sleep(rng.choice([0.001, 0.002, 0.01]))

    nursery.start_soon(gatekeeper)
    async with trio.open_nursery() as producers:
        for _ in range(4):
            producers.start_soon(producer)
    nursery.cancel_scope.cancel()
    seqs = [message["seq"] for message in stream.frames()]
    assert seqs == list(range(1000))
    assert paths["nowait"] > 50 and paths["send"] > 50, paths  # both paths carried frames


@pytest.mark.parametrize("seed", range(5))
async def test_frames_keep_their_order_over_quic_when_the_send_buffer_fills(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    """Two producers outrun a path that goes dark three times: `send_nowait` is refused
    while the QUIC send buffer is full or a `send` is writing, and `send` takes over. As
    above, a producer takes its sequence number and tries `send_nowait` with no checkpoint
    in between: every message arrives once, in the order of the numbers. (Without both the
    connection's and the stream's check, a producer's `send_nowait` overtakes the other's
    `send` woken by acknowledgements in most of these seeds.)"""
    rng = random.Random(seed)
    net = _network(nursery)
    client, server = await _quic_pair(nursery, net)
    count, payload = 600, b"d" * 8192  # ~4.9 MB: several send buffers' worth
    numbers = itertools.count()
    used: list[str] = []  # the path each message took, in the order of the numbers
    got: list[int] = []

    async def producer() -> None:
        for _ in range(count // 2):
            message = {"seq": next(numbers), "data": payload}
            if client.send_nowait(message):  # type: ignore[attr-defined]
                used.append("nowait")
            else:
                used.append("send")
                await client.send(message)
            await trio.sleep(rng.choice([0, 0.001]))

    async def flicker() -> None:
        for _ in range(3):
            await trio.sleep(0.03)
            _blackout(net)
            await trio.sleep(0.3)
            _lift(net)

    nursery.start_soon(flicker)
    for _ in range(2):
        nursery.start_soon(producer)
    with trio.fail_after(60):
        while len(got) < count:
            message = await server.receive()
            assert message["data"] == payload
            got.append(message["seq"])
    assert got == list(range(count))
    switches = {(a, b) for a, b in itertools.pairwise(used) if a != b}
    assert switches == {("nowait", "send"), ("send", "nowait")}  # back and forth
    nursery.cancel_scope.cancel()
