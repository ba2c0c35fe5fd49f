"""Closing a websocket stream, in every order: the gateway notices at once.

The client here is raw wsproto over a TCP stream, so each test decides which bytes go out and
when (a close frame right behind a message, in the same write; a FIN or a reset with no close
frame at all) and sees the server's close frame and its TCP close itself. The gateway runs
with the default limits: the 10 s head deadline must play no part once the upgrade is through.
The sockets are real (loopback) and the clock is trio's MockClock with autojump, so any timer
the close waited for (head deadline, ping interval, keep-alive) shows as virtual seconds.
The last test is about the gateway's own websocket client, `open_websocket`.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)

import trimicro
from trimicro.gateway import HttpLimits
from trimicro.gateway._proxy import open_websocket

from .conftest import running_gateway

#: An empty ping frame from a server (FIN + opcode 9, unmasked, no payload).
PING_FRAME = b"\x89\x00"

#: "At once": far below the 10 s head deadline and the 20 s ping interval.
PROMPT = 1.0


@attrs.define(eq=False)
class Holder:
    """A stream endpoint that echoes each message and, after the end of input, holds the
    stream open: only the gateway cancelling the call ends it."""

    service: trimicro.Service
    received: list[Any] = attrs.field(factory=list)
    started: trio.Event = attrs.field(factory=trio.Event)
    ended: trio.Event = attrs.field(factory=trio.Event)
    ended_at: float = 0.0
    cancelled: bool = False


def make_holder() -> Holder:
    holder = Holder(trimicro.Service("holder"))

    @holder.service.stream_endpoint("Hold.Open")
    async def hold(req: None, stream: trimicro.Stream[None]) -> None:
        holder.started.set()
        try:
            async for message in stream:
                holder.received.append(message)
                await stream.send(message)
            await trio.sleep_forever()
        except trio.Cancelled:
            holder.cancelled = True
            raise
        finally:
            holder.ended_at = trio.current_time()
            holder.ended.set()

    return holder


class RawClient:
    """A websocket client that sends exactly the bytes it is told to."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)

    @classmethod
    async def connect(cls, address: str, path: str) -> RawClient:
        host, _, port = address.rpartition(":")
        client = cls(await trio.open_tcp_stream(host, int(port)))
        await client.stream.send_all(client.ws.send(Request(host=address, target=path)))
        await client._next(AcceptConnection)
        return client

    def message(self, payload: Any) -> bytes:
        return self.ws.send(TextMessage(json.dumps(payload)))

    def close_frame(self) -> bytes:
        return self.ws.send(CloseConnection(code=1000))

    async def receive(self) -> Any:
        event = await self._next(TextMessage)
        assert isinstance(event, TextMessage)
        return json.loads(event.data)

    async def closed(self) -> tuple[int | None, float]:
        """Read until the server closes TCP: (the code of its close frame, the time)."""
        code = None
        while data := await self.stream.receive_some(65536):
            if self.ws.state is not ConnectionState.CLOSED:
                self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, CloseConnection):
                    code = event.code
        return code, trio.current_time()

    async def abort(self, *, reset: bool) -> None:
        """Drop the TCP connection without a close frame: a FIN, or with `reset` an RST."""
        if reset:
            self.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        await self.stream.aclose()

    async def _next(self, kind: type[Event]) -> Event:
        while True:
            for event in self.ws.events():
                if isinstance(event, kind):
                    return event
                assert isinstance(event, Ping | AcceptConnection), event  # hypercorn's pings
            data = await self.stream.receive_some(65536)
            assert data, f"connection closed while waiting for {kind.__name__}"
            self.ws.receive_data(data)


async def _handler_end(holder: Holder, since: float) -> float:
    with trio.fail_after(5):
        await holder.ended.wait()
    assert holder.cancelled, "the gateway must cancel the call when the client leaves"
    return holder.ended_at - since


CLOSE_ORDERS = {
    # name: (messages before the close, wait for their replies, close frame in the same write)
    "before-any-message": (0, False, False),
    "right-after-the-first-message": (1, False, False),
    "first-message-and-close-in-one-write": (1, False, True),
    "after-the-first-reply": (1, True, False),
    "after-several-messages": (5, True, False),
}


@pytest.mark.parametrize("order", CLOSE_ORDERS)
async def test_close_frame_ends_the_call_and_the_connection_at_once(
    order: str, autojump_clock: trio.testing.MockClock
) -> None:
    count, wait_replies, one_write = CLOSE_ORDERS[order]
    holder = make_holder()
    async with running_gateway(holder.service) as (gateway, _):
        assert gateway.app.backend.limits.head_timeout == 10.0
        client = await RawClient.connect(gateway.address, "/holder/hold/open")
        async with client.stream:
            with trio.fail_after(5):
                await holder.started.wait()
            pending = b""
            for i in range(count):
                pending += client.message({"i": i})
                if not one_write:
                    await client.stream.send_all(pending)
                    pending = b""
            if wait_replies:
                assert [await client.receive() for _ in range(count)] == [
                    {"i": i} for i in range(count)
                ]
            closing = trio.current_time()
            await client.stream.send_all(pending + client.close_frame())
            with trio.fail_after(5):
                code, tcp_closed_at = await client.closed()
            took = await _handler_end(holder, closing)
    assert code == 1000  # the server answered the close handshake
    assert tcp_closed_at - closing < PROMPT
    assert took < PROMPT
    if wait_replies:
        assert holder.received == [{"i": i} for i in range(count)]


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
@pytest.mark.parametrize("count", [0, 1], ids=["before-any-message", "after-the-first-message"])
async def test_dropped_tcp_connection_cancels_the_call_at_once(
    count: int, reset: bool, autojump_clock: trio.testing.MockClock
) -> None:
    holder = make_holder()
    async with running_gateway(holder.service) as (gateway, _):
        client = await RawClient.connect(gateway.address, "/holder/hold/open")
        with trio.fail_after(5):
            await holder.started.wait()
        if count:
            await client.stream.send_all(client.message({"i": 0}))
        leaving = trio.current_time()
        await client.abort(reset=reset)
        took = await _handler_end(holder, leaving)
    assert took < PROMPT


async def test_head_deadline_does_not_apply_to_an_open_websocket(
    autojump_clock: trio.testing.MockClock,
) -> None:
    holder = make_holder()
    async with running_gateway(holder.service, limits=HttpLimits(head_timeout=0.3)) as (
        gateway,
        _,
    ):
        client = await RawClient.connect(gateway.address, "/holder/hold/open")
        async with client.stream:
            await client.stream.send_all(client.message({"i": 0}))
            assert await client.receive() == {"i": 0}
            await trio.sleep(0.8)  # idle well past the head deadline: a websocket has none
            await client.stream.send_all(b"\x81")  # a frame's first byte, the rest 0.4 s later
            await trio.sleep(0.4)
            await client.stream.send_all(client.message({"i": 1})[1:])
            assert await client.receive() == {"i": 1}
            await client.stream.send_all(client.close_frame())
            with trio.fail_after(5):
                code, _ = await client.closed()
    assert code == 1000


async def _pings_before_answering_close(
    listener: trio.SocketListener, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """A websocket server that, when the client's close frame arrives, pings before it
    answers: the ping crosses the client's close on the wire, as hypercorn's first ping
    (sent right after the accept) does when a client closes at once."""
    task_status.started()
    stream = await listener.accept()
    ws = WSConnection(ConnectionType.SERVER)
    async with stream:
        while data := await stream.receive_some(65536):
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send_all(ws.send(AcceptConnection()))
                elif isinstance(event, CloseConnection):
                    # A ping frame by hand: having seen the close, wsproto would not send one.
                    await stream.send_all(PING_FRAME + ws.send(event.response()))
                    return


async def test_open_websocket_closes_at_once_when_a_ping_crosses_its_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The gateway's websocket client (the proxy's upstream side; the websocket tests' client)
    took 10 s to close, then raised LocalProtocolError, when a ping crossed its close frame."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0], trio.open_nursery() as nursery:
        await nursery.start(_pings_before_answering_close, listeners[0])
        started = trio.current_time()
        with trio.fail_after(5):
            async with open_websocket(f"127.0.0.1:{port}", "/"):
                pass
        took = trio.current_time() - started
    assert took < PROMPT
