"""Shaped links for tests and simulations: one-way delay, a partition side, a black hole
(a peer that hangs without closing), a filter on what is sent and a gate that holds sends —
all on trio's clock.

`ShapedTransport` wraps any transport; every connection it makes or accepts applies its
`Shape` to what this end sends (latency as an arrival time carried with the message, so
a slow link does not serialise) and to what it receives (across a partition, or into a black
hole, messages vanish: the link hangs, as through a real cut, until keepalives notice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from ..session import Connection, ConnectionHandler, Transport

__all__ = ["ARRIVAL", "Shape", "ShapedConnection", "ShapedTransport"]

ARRIVAL = "_arrival"  # extra keys on link messages: messages ignore unknown keys
_SIDE = "_side"


@attrs.define
class Shape:
    delay: float = 0.0
    side: int = 0  # messages between different sides are lost (a partition)
    blackhole: bool = False
    drop: Callable[[Mapping[str, Any]], bool] | None = None  # True: do not send
    gate: trio.Event | None = None  # sends wait until it is set (a link that cannot write)


class ShapedConnection:
    def __init__(self, inner: Connection, shape: Shape) -> None:
        self._inner, self._shape = inner, shape

    @property
    def peer(self) -> str:
        return self._inner.peer

    @property
    def local(self) -> str:
        return self._inner.local

    async def send(self, message: Mapping[str, Any]) -> None:
        shape = self._shape
        if shape.gate is not None:
            await shape.gate.wait()
        if shape.blackhole or (shape.drop is not None and shape.drop(message)):
            await trio.lowlevel.checkpoint()
            return
        arrival = trio.current_time() + shape.delay
        await self._inner.send({**message, ARRIVAL: arrival, _SIDE: shape.side})

    async def receive(self) -> dict[str, Any]:
        while True:
            message = await self._inner.receive()
            await trio.sleep_until(message.pop(ARRIVAL, 0.0))
            side = message.pop(_SIDE, 0)
            if not self._shape.blackhole and side == self._shape.side:
                return message

    async def aclose(self) -> None:
        await self._inner.aclose()


class ShapedTransport:
    """Wraps every connection `inner` makes or accepts with `shape` (this node's end)."""

    def __init__(self, inner: Transport, shape: Shape | None = None) -> None:
        self._inner = inner
        self.shape = shape or Shape()
        self.scheme = inner.scheme

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async def shaped(conn: Connection) -> None:
            await handler(ShapedConnection(conn, self.shape))

        await self._inner.serve(shaped, address, task_status=task_status)

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        return ShapedConnection(await self._inner.connect(nursery, address), self.shape)
