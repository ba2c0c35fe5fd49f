"""`StreamConnection.send_eager`: a frame the stream takes at once is written with no schedule
point (a caller about to wait for its reply saves a trip through the scheduler); what the
stream does not take follows through the ordinary writer, before anything given later."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trimicro.session import Connection, ConnectionClosed, TcpTransport
from trimicro.session._stream import StreamConnection

from .test_stream_handoff import _Gate


async def _collect(conn: Connection, into: list[dict[str, object]], started: trio.Event) -> None:
    await started.wait()
    try:
        while True:
            into.append(await conn.receive())
    except ConnectionClosed:
        pass


class _Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.count += 1


async def test_over_tcp_a_small_frame_goes_without_a_schedule_point() -> None:
    received: list[dict[str, object]] = []
    reading = trio.Event()
    reading.set()
    steps = _Steps()
    transport = TcpTransport()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            transport.serve, lambda c: _collect(c, received, reading), "127.0.0.1:0"
        )
        conn = await transport.connect(nursery, bound)
        assert isinstance(conn, StreamConnection)
        trio.lowlevel.add_instrument(steps)
        try:
            for i in range(50):
                await conn.send_eager({"i": i})
            assert steps.count == 0  # still the same task step: no schedule point in 50
            await conn.send({"i": 50})  # an ordinary send is one
            assert steps.count > 0
        finally:
            trio.lowlevel.remove_instrument(steps)
        with trio.fail_after(5):
            while len(received) < 51:
                await trio.sleep(0.001)
        assert [m["i"] for m in received] == list(range(51))
        nursery.cancel_scope.cancel()


async def test_over_tcp_what_the_socket_does_not_take_follows_in_order() -> None:
    """A 3 MiB frame to a peer that is not reading: the socket takes part of it, the rest
    waits in the writer; a later send goes after it, and every byte arrives."""
    received: list[dict[str, object]] = []
    reading = trio.Event()
    transport = TcpTransport()
    big = b"x" * (3 * 1024 * 1024)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            transport.serve, lambda c: _collect(c, received, reading), "127.0.0.1:0"
        )
        conn = await transport.connect(nursery, bound)
        assert isinstance(conn, StreamConnection)
        nursery.start_soon(conn.send_eager, {"i": 0, "b": big})
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(conn.send, {"i": 1})
        await trio.testing.wait_all_tasks_blocked()
        reading.set()
        with trio.fail_after(10):
            while len(received) < 2:
                await trio.sleep(0.001)
        assert [m["i"] for m in received] == [0, 1]
        assert received[0]["b"] == big
        nursery.cancel_scope.cancel()


async def test_eager_behind_a_writer_joins_its_batch() -> None:
    stream = _Gate()
    writes: list[int] = []

    def write_some(data: bytes) -> int:
        writes.append(len(data))
        return 0 if stream.shut else stream.send_all_nowait(data) and len(data)

    conn = StreamConnection(stream, "peer", write_some=write_some)
    stream.shut = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.send, {"i": 1})  # the writer, waiting in send_all
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(conn.send_eager, {"i": 2})
        await trio.testing.wait_all_tasks_blocked()
        assert writes == []  # somebody is writing: not even tried
        stream.open_gate()
    assert stream.frames() == [1, 2]


async def test_cancelled_after_part_of_the_frame_went_out_closes_the_connection() -> None:
    stream = _Gate(cut=True)
    conn = StreamConnection(stream, "peer", write_some=lambda data: len(data) // 2)
    stream.shut = True
    with trio.move_on_after(1) as scope:
        await conn.send_eager({"i": 1})  # half "written", the rest waits for the gate
    assert scope.cancelled_caught
    assert stream.closed
    with pytest.raises(ConnectionClosed, match="cancelled part way"):
        await conn.send({"i": 2})
