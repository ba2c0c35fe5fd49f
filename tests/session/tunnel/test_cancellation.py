"""Session `send`/`receive` under cancellation (MockClock, memory links): a cancelled call
has no effect — nothing sent, nothing taken."""

from __future__ import annotations

import itertools

import trio
import trio.testing

from trimicro.session import MemoryTransport
from trimicro.session.tunnel import open_tunnel
from trimicro.session.tunnel._driver import LINK_QUEUE

from ._shaped import Shape, ShapedTransport

_hubs = itertools.count()


async def test_a_send_cancelled_while_the_link_is_full_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = f"tunnel-cancel-{next(_hubs)}"
    shape = Shape()
    async with (
        open_tunnel(MemoryTransport(hub), address="b") as b,
        open_tunnel(ShapedTransport(MemoryTransport(hub), shape), peers=["b"]) as a,
    ):
        listener = b.listen("sink")
        await a.wait_links(1)
        async with await a.dial("sink") as session:
            accepted = await listener.accept()
            shape.gate = trio.Event()  # a's link stops writing
            sent = 0
            while True:
                with trio.move_on_after(1) as scope:
                    await session.send(b"%d" % sent)
                if scope.cancelled_caught:
                    break
                sent += 1
            # The queue full, and what the writer took in one batch before its write stuck
            # (at least one message; scheduling order decides how many).
            assert LINK_QUEUE < sent <= 2 * LINK_QUEUE
            shape.gate.set()
            got = [await accepted.receive() for _ in range(sent)]
            assert got == [b"%d" % i for i in range(sent)]
            await session.send(b"after")
            assert await accepted.receive() == b"after"  # the cancelled one never went
        await listener.aclose()


async def test_a_receive_cancelled_takes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    hub = f"tunnel-cancel-{next(_hubs)}"
    async with (
        open_tunnel(MemoryTransport(hub), address="b") as b,
        open_tunnel(MemoryTransport(hub), peers=["b"]) as a,
    ):
        listener = b.listen("sink")
        await a.wait_links(1)
        async with await a.dial("sink") as session:
            accepted = await listener.accept()
            await session.send(b"one")
            await trio.testing.wait_all_tasks_blocked()
            assert list(accepted._buffer) == [b"one"]
            with trio.CancelScope() as scope:
                scope.cancel()
                await accepted.receive()
            assert scope.cancelled_caught
            with trio.fail_after(1):  # it is still there
                assert await accepted.receive() == b"one"
        await listener.aclose()
