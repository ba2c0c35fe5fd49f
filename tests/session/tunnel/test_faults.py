"""Session data over a QUIC link through a lossy path (virtual time): 5% loss each way and a
2 s blackout neither lose nor reorder session data, and the link survives the blackout."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import Tunnel, open_tunnel
from trimicro.testing._paths import PathFaults, open_memory_network

IDENTITY = generate_identity("tunnel-faults")
COUNT = 2000


async def _echo(tunnel: Tunnel) -> None:
    async with tunnel.listen("echo") as listener:
        async for session in listener:
            async with session:
                async for data in session:
                    await session.send(data)


@pytest.mark.parametrize("seed", [1, 2])
async def test_loss_and_a_blackout_neither_lose_nor_reorder(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    faults = PathFaults(delay=0.02, loss=0.05, blackouts=[(3.0, 5.0)])
    async with open_memory_network(seed=seed, faults=faults) as net:
        server_quic = QuicTransport(network=net.host("10.0.0.1"), identity=IDENTITY)
        client_quic = QuicTransport(network=net.host("10.0.0.2"))
        async with (
            open_tunnel(server_quic, address="10.0.0.1:0", token="t") as server,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_echo, server)
            pin = f"{server.address}?cert_sha256={IDENTITY.cert_sha256}"
            async with open_tunnel(client_quic, peers=[pin], token="t") as client:
                with trio.fail_after(5):
                    await client.wait_links(1)
                got: list[int] = []
                async with await client.dial("echo") as session:

                    async def send_all() -> None:
                        for i in range(COUNT):
                            await session.send(i.to_bytes(4, "big"))
                            await trio.sleep(0.004)  # ~8 s of traffic across the blackout

                    async with trio.open_nursery() as senders:
                        senders.start_soon(send_all)
                        with trio.fail_after(60):
                            while len(got) < COUNT:
                                got.append(int.from_bytes(await session.receive(), "big"))
                    assert trio.current_time() > 5.0  # the traffic spanned the blackout
                assert got == list(range(COUNT))
                (link,) = client.statistics().links
                assert link.state == "connected" and link.up_since is not None
                assert link.up_since < 3.0  # the same link throughout
            for src, dst in (("10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.1")):
                counters = net.link(src, dst).counters
                assert counters.lost > 10 and counters.blacked_out > 0, counters
            nursery.cancel_scope.cancel()
