"""One conformance suite every transport passes (as trio's `check_two_way_stream`).

    await check_transport(TcpTransport(), "127.0.0.1:0")

Each check starts a server with the transport, connects a client, and asserts behaviour:
round trips both ways, ordering, concurrent senders, large and oversize frames, close and
cancellation semantics, and refused connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ..codec import DEFAULT_LIMITS
from ..session import ConnectError, Connection, ConnectionClosed, FrameTooLarge, Transport

__all__ = ["CHECKS", "check_transport"]

Check = Callable[[Transport, str], Awaitable[None]]


async def _echo(conn: Connection) -> None:
    try:
        while True:
            await conn.send(await conn.receive())
    except ConnectionClosed:
        pass


async def _with_echo_server(
    transport: Transport, address: str, body: Callable[[Connection], Awaitable[None]]
) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, _echo, address)
        conn = await transport.connect(nursery, bound)
        try:
            await body(conn)
        finally:
            await conn.aclose()
        nursery.cancel_scope.cancel()


async def check_round_trip_in_order(transport: Transport, address: str) -> None:
    async def body(conn: Connection) -> None:
        for i in range(100):
            await conn.send({"i": i, "payload": b"x" * i})
        for i in range(100):
            assert await conn.receive() == {"i": i, "payload": b"x" * i}

    await _with_echo_server(transport, address, body)


async def check_concurrent_senders_do_not_interleave(transport: Transport, address: str) -> None:
    async def body(conn: Connection) -> None:
        async def sender(task: int) -> None:
            for i in range(20):
                await conn.send({"task": task, "i": i, "pad": b"p" * 10_000})

        async with trio.open_nursery() as nursery:
            for task in range(10):
                nursery.start_soon(sender, task)
            seen: dict[int, list[int]] = {}
            for _ in range(200):
                message = await conn.receive()
                seen.setdefault(message["task"], []).append(message["i"])
        assert seen == {task: list(range(20)) for task in range(10)}

    await _with_echo_server(transport, address, body)


async def check_large_frames(transport: Transport, address: str) -> None:
    async def body(conn: Connection) -> None:
        big = {"b": b"\x5a" * (3 * 1024 * 1024)}
        await conn.send(big)
        assert await conn.receive() == big
        try:
            await conn.send({"b": b"x" * (DEFAULT_LIMITS.max_frame_size + 1)})
        except FrameTooLarge:
            pass
        else:
            raise AssertionError("an oversize message was sent")
        await conn.send({"still": "usable"})
        assert await conn.receive() == {"still": "usable"}

    await _with_echo_server(transport, address, body)


async def check_peer_close_ends_receive(transport: Transport, address: str) -> None:
    closed = trio.Event()

    async def close_at_once(conn: Connection) -> None:
        await conn.aclose()
        closed.set()

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, close_at_once, address)
        conn = await transport.connect(nursery, bound)
        await closed.wait()
        try:
            await conn.receive()
        except ConnectionClosed:
            pass
        else:
            raise AssertionError("receive after the peer closed returned a message")
        await conn.aclose()
        await conn.aclose()  # idempotent
        nursery.cancel_scope.cancel()


async def check_server_sees_client_close(transport: Transport, address: str) -> None:
    ended = trio.Event()

    async def handler(conn: Connection) -> None:
        try:
            await conn.receive()
        except ConnectionClosed:
            ended.set()

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, handler, address)
        conn = await transport.connect(nursery, bound)
        await conn.aclose()
        with trio.fail_after(5):
            await ended.wait()
        nursery.cancel_scope.cancel()


async def check_send_after_close_raises(transport: Transport, address: str) -> None:
    async def body(conn: Connection) -> None:
        await conn.aclose()
        try:
            await conn.send({"late": True})
        except ConnectionClosed:
            return
        raise AssertionError("send on a closed connection succeeded")

    await _with_echo_server(transport, address, body)


async def check_cancelled_receive_leaves_connection_usable(
    transport: Transport, address: str
) -> None:
    async def body(conn: Connection) -> None:
        with trio.move_on_after(0.05):
            await conn.receive()  # nothing comes: cancelled mid-read
        await conn.send({"after": "cancel"})
        assert await conn.receive() == {"after": "cancel"}

    await _with_echo_server(transport, address, body)


async def check_cancelling_serve_closes_connections(transport: Transport, address: str) -> None:
    async with trio.open_nursery() as nursery:
        serve_scope = trio.CancelScope()

        async def serve(task_status: trio.TaskStatus[str]) -> None:
            with serve_scope:
                await transport.serve(_echo, address, task_status=task_status)

        bound = await nursery.start(serve)
        conn = await transport.connect(nursery, bound)
        await conn.send({"a": 1})
        assert await conn.receive() == {"a": 1}
        serve_scope.cancel()
        with trio.fail_after(5):
            try:
                await conn.receive()
            except ConnectionClosed:
                pass
            else:
                raise AssertionError("connection survived its server")
        await conn.aclose()


async def check_connect_refused(transport: Transport, address: str) -> None:
    async with trio.open_nursery() as nursery:
        serve_scope = trio.CancelScope()

        async def serve(task_status: trio.TaskStatus[str]) -> None:
            with serve_scope:
                await transport.serve(_echo, address, task_status=task_status)

        bound = await nursery.start(serve)
        serve_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        try:
            with trio.fail_after(10):
                conn = await transport.connect(nursery, bound)
        except ConnectError:
            pass
        else:
            await conn.aclose()
            raise AssertionError(f"connected to {bound} after its server stopped")


CHECKS: list[Check] = [
    check_round_trip_in_order,
    check_concurrent_senders_do_not_interleave,
    check_large_frames,
    check_peer_close_ends_receive,
    check_server_sees_client_close,
    check_send_after_close_raises,
    check_cancelled_receive_leaves_connection_usable,
    check_cancelling_serve_closes_connections,
    check_connect_refused,
]


async def check_transport(transport: Transport, address: str) -> None:
    """Run every check against `transport`, listening on `address`."""
    for check in CHECKS:
        await check(transport, address)
