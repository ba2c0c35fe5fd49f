"""Every transport passes the same conformance suite."""

from __future__ import annotations

import itertools

import pytest
import trio.testing

from trimicro.session import MemoryTransport, TcpTransport
from trimicro.testing import CHECKS

_names = itertools.count()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_tcp(check) -> None:
    await check(TcpTransport(), "127.0.0.1:0")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_memory_in_virtual_time(check, autojump_clock: trio.testing.MockClock) -> None:
    await check(MemoryTransport(f"conformance-{next(_names)}"), "")


async def test_memory_partition_refuses_and_breaks(autojump_clock: trio.testing.MockClock) -> None:
    from trimicro.session import ConnectError, ConnectionClosed

    transport = MemoryTransport("partition")

    async def echo(conn) -> None:
        while True:
            await conn.send(await conn.receive())

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, echo, "")
        conn = await transport.connect(nursery, bound)
        transport.faults.partitioned.add(bound)
        with pytest.raises(ConnectionClosed):
            await conn.send({"a": 1})
        with pytest.raises(ConnectError):
            await transport.connect(nursery, bound)
        transport.faults.partitioned.clear()
        healed = await transport.connect(nursery, bound)
        await healed.send({"a": 2})
        assert await healed.receive() == {"a": 2}
        nursery.cancel_scope.cancel()


async def test_memory_delay_is_exact_in_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport = MemoryTransport("delay")
    transport.faults.delay = 0.05

    async def echo(conn) -> None:
        while True:
            await conn.send(await conn.receive())

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, echo, "")
        conn = await transport.connect(nursery, bound)
        start = trio.current_time()
        await conn.send({"ping": 1})
        assert await conn.receive() == {"ping": 1}
        assert trio.current_time() - start == pytest.approx(0.1)
        nursery.cancel_scope.cancel()
