"""QUIC over real UDP sockets through the lossy relay (trimicro.testing._relay), one server in
a real child process."""

from __future__ import annotations

import hashlib
import math
import random
import subprocess
import sys

import attrs
import pytest
import trio

from trimicro.session import ConnectError, Connection, ConnectionClosed
from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicOptions, QuicTransport
from trimicro.testing._paths import PathFaults
from trimicro.testing._relay import open_udp_relay

IDENTITY = generate_identity("relay-test")

SERVER_PROCESS = """
import trio
from trimicro.session import ConnectionClosed
from trimicro.session._quic_transport import QuicTransport

async def echo(conn):
    try:
        while True:
            await conn.send(await conn.receive())
    except ConnectionClosed:
        pass

async def main():
    transport = QuicTransport()
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(transport.serve, echo, "127.0.0.1:0")
        print(bound, transport.node_metadata()["cert_sha256"], flush=True)

trio.run(main)
"""


async def echo(conn: Connection) -> None:
    try:
        while True:
            await conn.send(await conn.receive())
    except ConnectionClosed:
        pass


async def _first_line(stream: trio.abc.ReceiveStream) -> str:
    line = b""
    while not line.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            raise AssertionError("the server process exited before printing its address")
        line += chunk
    return line.decode().strip()


@pytest.mark.e2e
async def test_a_server_process_through_a_lossy_relay(nursery: trio.Nursery) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", SERVER_PROCESS], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        with trio.fail_after(20):
            bound, pin = (await _first_line(process.stdout)).split()
            faults = PathFaults(delay=0.002, loss=0.05, reorder=0.05, duplicate=0.02)
            async with open_udp_relay(bound, up=faults, down=attrs.evolve(faults)) as relay:
                client = QuicTransport()
                conn = await client.connect(nursery, f"{relay.address}?cert_sha256={pin}")
                data = random.Random(0).randbytes(1_000_000)
                for start in range(0, len(data), 50_000):
                    await conn.send({"chunk": data[start : start + 50_000]})
                echoed = b"".join([(await conn.receive())["chunk"] for _ in range(20)])
                assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
                await conn.aclose()
                assert relay.up.counters.lost + relay.down.counters.lost > 0
                assert relay.up.counters.duplicated + relay.down.counters.duplicated > 0
    finally:
        process.terminate()
        with trio.CancelScope(shield=True):
            await process.wait()
            await process.stdout.aclose()
    nursery.cancel_scope.cancel()


async def test_anti_amplification_through_the_relay(nursery: trio.Nursery) -> None:
    server = QuicTransport(identity=IDENTITY)
    bound = await nursery.start(server.serve, echo, "127.0.0.1:0")
    async with open_udp_relay(bound) as relay:
        # Only the client's first datagram gets through, and none of the server's: the server
        # cannot validate the client's address and keeps probing into the void.
        relay.up.faults.blackouts.append((trio.current_time() + 0.05, math.inf))
        relay.down.faults.blackouts.append((0.0, math.inf))
        client = QuicTransport(QuicOptions(dial_timeout=1.5))
        with pytest.raises(ConnectError, match=r"no handshake within 1\.5 s"):
            await client.connect(nursery, relay.address)
        assert relay.up.counters.datagrams_delivered == 1
        assert relay.down.counters.datagrams_sent >= 3
        assert relay.down.counters.bytes_sent <= 3 * relay.up.counters.bytes_delivered
    nursery.cancel_scope.cancel()


async def test_the_relay_forwards_each_client_on_its_own_upstream_socket(
    nursery: trio.Nursery,
) -> None:
    server = QuicTransport(identity=IDENTITY)
    bound = await nursery.start(server.serve, echo, "127.0.0.1:0")
    async with open_udp_relay(bound) as relay:
        client = QuicTransport()
        conns = [await client.connect(nursery, relay.address) for _ in range(3)]
        for i, conn in enumerate(conns):
            await conn.send({"client": i})
        assert [await conn.receive() for conn in conns] == [{"client": i} for i in range(3)]
        assert server.statistics().connections_open == 3
        for conn in conns:
            await conn.aclose()
    nursery.cancel_scope.cancel()
