"""Server, client and bidirectional streams; credit-based flow control."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

import trimicro
from trimicro import errors
from trimicro.rpc._stream import WINDOW
from trimicro.testing import open_cluster


@attrs.frozen
class Number:
    value: int


@attrs.frozen
class Total:
    sum: int
    count: int


def make_counter() -> trimicro.Service:
    service = trimicro.Service("counter")

    @service.stream_endpoint("Count.Up")
    async def up(req: dict[str, int], stream: trimicro.Stream[None]) -> None:
        for i in range(req["to"]):
            await stream.send(Number(i))

    @service.stream_endpoint("Count.Sum")
    async def total(req: None, stream: trimicro.Stream[Number]) -> None:
        numbers = [n.value async for n in stream]
        await stream.send(Total(sum(numbers), len(numbers)))

    @service.stream_endpoint("Count.Double")
    async def double(req: None, stream: trimicro.Stream[Number]) -> None:
        async for number in stream:
            await stream.send(Number(number.value * 2))

    @service.stream_endpoint("Count.Fail")
    async def fail(req: None, stream: trimicro.Stream[None]) -> None:
        await stream.send(Number(1))
        raise errors.conflict("stream broke on purpose")

    return service


async def test_server_stream_delivers_all_in_order() -> None:
    async with open_cluster(make_counter()) as cluster:
        async with cluster.client.stream(
            "counter", "Count.Up", {"to": 500}, response=Number
        ) as stream:
            values = [n.value async for n in stream]
    assert values == list(range(500))


async def test_client_stream_sums_until_close_send() -> None:
    async with open_cluster(make_counter()) as cluster:
        async with cluster.client.stream("counter", "Count.Sum", response=Total) as stream:
            for i in range(200):
                await stream.send(Number(i))
            await stream.close_send()
            result = await stream.receive()
            with pytest.raises(trio.EndOfChannel):
                await stream.receive()
    assert result == Total(sum(range(200)), 200)


async def test_bidirectional_stream_interleaves() -> None:
    async with open_cluster(make_counter()) as cluster:
        async with cluster.client.stream("counter", "Count.Double", response=Number) as stream:
            got = []
            for i in range(10):
                await stream.send(Number(i))
                got.append((await stream.receive()).value)
            await stream.close_send()
    assert got == [2 * i for i in range(10)]


async def test_stream_error_reaches_receiver_after_data() -> None:
    async with open_cluster(make_counter()) as cluster:
        async with cluster.client.stream("counter", "Count.Fail", response=Number) as stream:
            assert (await stream.receive()).value == 1
            with pytest.raises(errors.Error) as info:
                await stream.receive()
    assert info.value.code == 409


async def test_slow_stream_consumer_does_not_block_other_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = make_counter()
    sent: list[int] = []

    @service.stream_endpoint("Count.Flood")
    async def flood(req: None, stream: trimicro.Stream[None]) -> None:
        for i in range(10 * WINDOW):
            await stream.send(Number(i))
            sent.append(i)

    async with open_cluster(service) as cluster:
        async with cluster.client.stream("counter", "Count.Flood", response=Number) as stream:
            first = await stream.receive()
            await trio.sleep(1)  # the consumer stalls; the server must stop at its credit
            assert len(sent) == WINDOW
            # Another call on the same connection still goes through meanwhile.
            assert await cluster.client.call("counter", "Debug.Health") == {"status": "ok"}
            rest = [n.value async for n in stream]
        assert len(cluster.client._peers) == 1
    assert [first.value, *rest] == list(range(10 * WINDOW))


async def test_unary_endpoint_called_as_stream_is_405() -> None:
    async with open_cluster(make_counter()) as cluster:
        async with cluster.client.stream("counter", "Debug.Health") as stream:
            with pytest.raises(errors.Error) as info:
                await stream.receive()
    assert info.value.code == 405
