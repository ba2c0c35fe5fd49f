"""Per-call state shared by client and server: the inbound queue, credits, and `Stream`.

Flow control is credit-based so that one slow stream consumer never stalls the other calls on
its connection: a sender may have at most `WINDOW` unacknowledged messages in flight; the
receiver returns credit (a `Credit` frame) each time it has consumed half a window. A peer
that sends beyond its credit is violating the protocol and loses the connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

from ..codec import Codec
from ..session import ConnectionClosed, ProtocolError
from . import errors
from ._envelope import Credit, End, Envelope, ErrorFrame, Message

__all__ = ["RAW", "WINDOW", "CallState", "Stream"]

#: Stream messages a sender may have in flight before it needs credit back.
WINDOW = 64


def _raw(data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a raw stream carries bytes, not {type(data).__name__}")
    return bytes(data)


#: Bodies as they are on the wire, for proxies: encode and decode pass bytes through.
RAW = Codec("application/octet-stream", _raw, _raw, False)

T = TypeVar("T")
SendFrame = Callable[[Envelope], Awaitable[None]]


class CallState:
    """Frames for one call, routed here by the connection's reader task.

    A deque and a parking lot rather than a memory channel: one is made per call, so its cost
    is on the hot path.
    """

    __slots__ = (
        "_closed",
        "_credit",
        "_credit_lot",
        "_frames",
        "_lot",
        "call_id",
        "lost",
        "never_ran",
    )

    #: Room for a full window of messages plus the closing frame(s).
    CAPACITY = WINDOW + 4

    def __init__(self, call_id: int) -> None:
        self.call_id = call_id
        self._frames: deque[Envelope] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._credit = WINDOW
        self._credit_lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.lost = False
        #: The server's go-away said it never took this call: safe to retry anywhere.
        self.never_ran = False

    def deliver(self, envelope: Envelope) -> None:
        """Called by the reader for each frame of this call; never blocks."""
        if isinstance(envelope, Credit):
            self._grant(envelope.n)
            return
        if self._closed or self.lost:
            return  # the call is over locally; late frames are harmless
        if len(self._frames) >= self.CAPACITY:
            raise ProtocolError(f"call {self.call_id}: peer sent beyond its credit")
        self._frames.append(envelope)
        self._lot.unpark()

    def connection_lost(self, never_ran: bool = False) -> None:
        """The connection died: receivers see `ConnectionClosed`, senders stop waiting."""
        self.lost = True
        self.never_ran = never_ran
        self._lot.unpark_all()
        self._credit_lot.unpark_all()

    def close(self) -> None:
        """The call is over locally; later frames are dropped."""
        self._closed = True
        self._frames.clear()
        self._lot.unpark_all()

    def _grant(self, n: int) -> None:
        if n <= 0 or self._credit + n > WINDOW:
            raise ProtocolError(f"call {self.call_id}: bad credit {n}")
        self._credit += n
        self._credit_lot.unpark_all()

    async def take_credit(self) -> None:
        """Wait until one more message may be sent."""
        while self._credit == 0 and not self.lost:
            await self._credit_lot.park()
        if self.lost:
            raise ConnectionClosed("connection lost")
        self._credit -= 1

    async def receive(self) -> Envelope:
        """The next frame; `ConnectionClosed` if the connection died first."""
        while not self._frames:
            if self.lost or self._closed:
                raise ConnectionClosed("connection lost")
            await self._lot.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        return self._frames.popleft()


class Stream(Generic[T]):
    """One side of a streaming call: `send`, `receive`, `close_send`, and `async for`.

    Handlers receive one as their second argument; clients get one from `client.stream()`.
    `receive` raises `trio.EndOfChannel` once the other side has finished sending (and ends
    `async for`), or the remote `errors.Error` if the call failed.
    """

    def __init__(
        self,
        state: CallState,
        send_frame: SendFrame,
        codec: Codec,
        receive_type: Any = None,
    ) -> None:
        self._state = state
        self._send_frame = send_frame
        self._codec = codec
        self._receive_type = receive_type
        self._consumed = 0
        self.send_closed = False
        self.receive_closed = False

    async def send(self, message: object) -> None:
        """Send one message (waits for credit when the receiver is behind)."""
        if self.send_closed:
            raise trio.ClosedResourceError("send side already closed")
        await self._state.take_credit()
        await self._send_frame(Message(self._state.call_id, self._codec.encode(message)))

    async def close_send(self) -> None:
        """Tell the other side no more messages follow (idempotent)."""
        if not self.send_closed:
            self.send_closed = True
            await self._send_frame(End(self._state.call_id))

    async def receive(self) -> T:
        """The next message from the other side."""
        if self.receive_closed:
            raise trio.EndOfChannel
        envelope = await self._state.receive()
        if isinstance(envelope, Message):
            await self._consumed_one()
            value: T = self._codec.decode(envelope.body, self._receive_type)
            return value
        self.receive_closed = True
        if isinstance(envelope, ErrorFrame):
            raise errors.Error(envelope.id, envelope.code, envelope.detail, envelope.status)
        if isinstance(envelope, End):
            raise trio.EndOfChannel
        raise ProtocolError(f"unexpected {type(envelope).__name__} frame in a stream")

    async def _consumed_one(self) -> None:
        self._consumed += 1
        if self._consumed >= WINDOW // 2:
            n, self._consumed = self._consumed, 0
            await self._send_frame(Credit(self._state.call_id, n))

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
