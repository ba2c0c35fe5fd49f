"""StreamConnection's group commit when its writer is cancelled: the frames it carried for
others are handed on (not failed) and keep their place ahead of later ones; a write cut part
way on a stream that cannot promise "cancelled = nothing written" closes the connection."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trimicro.codec import cbor_loads
from trimicro.session import ConnectionClosed
from trimicro.session._stream import StreamConnection


class _Gate(trio.abc.Stream):
    """`send_all` waits while the gate is shut, then writes whole (so a cancel while it waits
    writes nothing: `cancel_safe_send`, as QUIC) — or, with `cut=True`, writes half the bytes
    before it waits (as a TCP socket with a full buffer)."""

    def __init__(self, *, cut: bool = False) -> None:
        self.wire = bytearray()
        self.shut = False
        self.passes = 0  # writes let through while shut
        self.cut = cut
        self.closed = False
        self._opened = trio.lowlevel.ParkingLot()
        if not cut:
            self.cancel_safe_send = True

    def open_gate(self) -> None:
        self.shut = False
        self._opened.unpark_all()

    def let_through(self, writes: int) -> None:
        self.passes += writes
        self._opened.unpark_all()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.shut and self.cut:
            self.wire += data[: len(data) // 2]
            data = data[len(data) // 2 :]
        while self.shut and not self.passes:
            await self._opened.park()
        if self.shut:
            self.passes -= 1
        self.wire += data
        await trio.lowlevel.cancel_shielded_checkpoint()

    def send_all_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        if self.shut:
            return False
        self.wire += data
        return True

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()

    def frames(self) -> list[int]:
        out, view = [], bytes(self.wire)
        while view:
            length = int.from_bytes(view[:4], "big")
            out.append(cbor_loads(view[4 : 4 + length])["i"])
            view = view[4 + length :]
        return out


async def _send(conn: StreamConnection, i: int, outcomes: dict[int, str]) -> None:
    try:
        await conn.send({"i": i})
    except ConnectionClosed as exc:
        outcomes[i] = f"closed: {exc}"
    except trio.Cancelled:
        outcomes[i] = "cancelled"
        raise
    else:
        outcomes[i] = "sent"


async def _start_cancellable(nursery: trio.Nursery, conn: StreamConnection, i: int,
                             outcomes: dict[int, str]) -> trio.CancelScope:  # fmt: skip
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            await _send(conn, i, outcomes)

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    return scope


@pytest.mark.parametrize("seed", range(5))
async def test_a_writer_cancelled_before_its_write_hands_the_batch_on_in_order(seed: int) -> None:
    """Writer 1 waits in send_all; 2 and 3 queue behind it; 1 is cancelled. 2 and 3 are
    written by one of them, before 4 (a later `send`), and `send_nowait` refuses meanwhile."""
    stream = _Gate()
    conn = StreamConnection(stream, "peer")
    outcomes: dict[int, str] = {}
    stream.shut = True
    async with trio.open_nursery() as nursery:
        writer = await _start_cancellable(nursery, conn, 1, outcomes)
        for i in (2, 3):
            nursery.start_soon(_send, conn, i, outcomes)
            await trio.testing.wait_all_tasks_blocked()
        writer.cancel()
        await trio.testing.wait_all_tasks_blocked()
        stream.open_gate()
        assert conn.send_nowait({"i": 99}) is False  # 2 and 3 are owed the stream first
        nursery.start_soon(_send, conn, 4, outcomes)
    assert stream.frames() == [2, 3, 4]
    assert outcomes == {1: "cancelled", 2: "sent", 3: "sent", 4: "sent"}
    assert conn.send_nowait({"i": 5}) is True and stream.frames()[-1] == 5


async def test_a_writer_cancelled_while_writing_others_batch_hands_it_on() -> None:
    """On a stream whose cancelled send_all writes nothing, the batch the writer was
    carrying is not failed: its senders write it (it used to raise ConnectionClosed)."""
    stream = _Gate()
    conn = StreamConnection(stream, "peer")
    outcomes: dict[int, str] = {}
    stream.shut = True
    async with trio.open_nursery() as nursery:
        writer = await _start_cancellable(nursery, conn, 1, outcomes)
        for i in (2, 3):  # one at a time: trio starts tasks in no set order
            nursery.start_soon(_send, conn, i, outcomes)
            await trio.testing.wait_all_tasks_blocked()
        stream.let_through(1)  # 1 is written; the writer takes [2, 3] and waits with them
        await trio.testing.wait_all_tasks_blocked()
        assert stream.frames() == [1]
        writer.cancel()
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_send, conn, 4, outcomes)
        await trio.testing.wait_all_tasks_blocked()
        stream.open_gate()
    assert stream.frames() == [1, 2, 3, 4]
    assert outcomes == {1: "cancelled", 2: "sent", 3: "sent", 4: "sent"}


async def test_a_write_cut_part_way_closes_the_connection() -> None:
    """A stream that may have written part of a frame when cancelled (a TCP socket) cannot
    carry another frame: the connection closes, and those waiting are told why."""
    stream = _Gate(cut=True)
    conn = StreamConnection(stream, "peer")
    outcomes: dict[int, str] = {}
    stream.shut = True
    async with trio.open_nursery() as nursery:
        writer = await _start_cancellable(nursery, conn, 1, outcomes)
        nursery.start_soon(_send, conn, 2, outcomes)
        await trio.testing.wait_all_tasks_blocked()
        writer.cancel()
    assert outcomes[1] == "cancelled"
    assert "cancelled part way" in outcomes[2]
    assert stream.closed
    with pytest.raises(ConnectionClosed, match="cancelled part way"):
        await conn.send({"i": 3})


async def test_a_sender_cancelled_before_it_writes_leaves_the_connection_usable() -> None:
    """Even on a stream that is not cancel-safe: nothing was written, nothing is cut."""
    stream = _Gate(cut=True)
    conn = StreamConnection(stream, "peer")
    with trio.CancelScope() as scope:
        scope.cancel()
        await conn.send({"i": 1})
    assert scope.cancelled_caught
    await conn.send({"i": 2})
    assert stream.frames() == [2] and not stream.closed


async def test_an_orphaned_batch_whose_senders_all_leave_frees_the_stream() -> None:
    stream = _Gate()
    conn = StreamConnection(stream, "peer")
    outcomes: dict[int, str] = {}
    stream.shut = True
    async with trio.open_nursery() as nursery:
        writer = await _start_cancellable(nursery, conn, 1, outcomes)
        waiters = [await _start_cancellable(nursery, conn, i, outcomes) for i in (2, 3)]
        for scope in [writer, *waiters]:  # all leave in the same round
            scope.cancel()
    assert outcomes == {1: "cancelled", 2: "cancelled", 3: "cancelled"}
    stream.open_gate()
    assert conn.send_nowait({"i": 4}) is True  # no writer role left held
    await conn.send({"i": 5})
    assert stream.frames() == [4, 5]
