"""Streaming in all three shapes: server, client and bidirectional.

Terminal 1:  trimicro run examples.streaming:service
Terminal 2:  trimicro stream counter Count.Up '{"to": 5}'
"""

from __future__ import annotations

import attrs
import trio

import trimicro

service = trimicro.Service("counter")


@attrs.frozen
class CountRequest:
    to: int
    interval: float = 0.0


@attrs.frozen
class Number:
    value: int


@attrs.frozen
class Total:
    sum: int
    count: int


@service.stream_endpoint("Count.Up")
async def count_up(req: CountRequest, stream: trimicro.Stream[None]) -> None:
    """Server streaming: replies 0..to-1."""
    for i in range(req.to):
        await stream.send(Number(i))
        await trio.sleep(req.interval)


@service.stream_endpoint("Count.Sum")
async def count_sum(req: None, stream: trimicro.Stream[Number]) -> None:
    """Client streaming: sums the numbers sent until the client closes, then replies once."""
    total = count = 0
    async for number in stream:
        total, count = total + number.value, count + 1
    await stream.send(Total(total, count))


@service.stream_endpoint("Count.Echo")
async def echo(req: None, stream: trimicro.Stream[Number]) -> None:
    """Bidirectional: doubles each number as it arrives."""
    async for number in stream:
        await stream.send(Number(number.value * 2))


if __name__ == "__main__":
    trimicro.run(service)
