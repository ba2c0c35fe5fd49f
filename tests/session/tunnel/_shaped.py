"""A transport wrapper for tunnel tests: per-node one-way delay, a black hole (a peer that
hangs without closing), and a filter on what it sends — all on trio's clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import trio

from trimicro.session import Connection, ConnectionHandler, Transport

ARRIVAL = "_arrival"  # an extra key; tunnel messages ignore unknown keys


@attrs.define
class Shape:
    delay: float = 0.0
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
        # Latency, not serialisation: the message carries when it may arrive.
        shape = self._shape
        if shape.gate is not None:
            await shape.gate.wait()
        if shape.blackhole or (shape.drop is not None and shape.drop(message)):
            await trio.lowlevel.checkpoint()
            return
        await self._inner.send({**message, ARRIVAL: trio.current_time() + shape.delay})

    async def receive(self) -> dict[str, Any]:
        while True:
            message = await self._inner.receive()
            await trio.sleep_until(message.pop(ARRIVAL, 0.0))
            if not self._shape.blackhole:
                return message

    async def aclose(self) -> None:
        await self._inner.aclose()


class ShapedTransport:
    """Wraps every connection `inner` makes or accepts with `shape` (this node's sends)."""

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
