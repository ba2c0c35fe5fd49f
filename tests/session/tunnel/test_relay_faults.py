"""A tunnel link over QUIC through the real lossy UDP relay (real sockets, real time): 5% loss
each way and a 2 s blackout in the middle of the traffic neither lose nor reorder session
data, and the link survives the blackout."""

from __future__ import annotations

import attrs
import trio

from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import Tunnel, open_tunnel
from trimicro.testing._paths import PathFaults
from trimicro.testing._relay import open_udp_relay

IDENTITY = generate_identity("tunnel-relay-faults")
COUNT = 500
#: Messages sent and not yet echoed: keeps traffic flowing into and across the blackout.
WINDOW = 16
BLACKOUT_AT = 150  # the blackout starts when this many echoes came back
BLACKOUT = 2.0


async def _echo(tunnel: Tunnel) -> None:
    async with tunnel.listen("echo") as listener:
        async for session in listener:
            async with session:
                async for data in session:
                    await session.send(data)


async def test_loss_and_a_blackout_through_the_udp_relay(nursery: trio.Nursery) -> None:
    async with open_tunnel(QuicTransport(identity=IDENTITY), address="127.0.0.1:0") as server:
        nursery.start_soon(_echo, server)
        faults = PathFaults(delay=0.001, loss=0.05)
        async with open_udp_relay(
            server.address or "", up=faults, down=attrs.evolve(faults), seed=7
        ) as relay:
            pin = f"{relay.address}?cert_sha256={IDENTITY.cert_sha256}"
            async with open_tunnel(QuicTransport(), peers=[pin]) as client:
                with trio.fail_after(5):
                    await client.wait_links(1)
                got: list[int] = []
                room = trio.Semaphore(WINDOW)
                blackout_started = 0.0
                with trio.fail_after(15):
                    async with await client.dial("echo") as session:

                        async def send_all() -> None:
                            for i in range(COUNT):
                                await room.acquire()
                                await session.send(i.to_bytes(4, "big"))

                        async with trio.open_nursery() as senders:
                            senders.start_soon(send_all)
                            while len(got) < COUNT:
                                got.append(int.from_bytes(await session.receive(), "big"))
                                room.release()
                                if len(got) == BLACKOUT_AT:
                                    blackout_started = trio.current_time()
                                    window = (blackout_started, blackout_started + BLACKOUT)
                                    relay.up.faults.blackouts.append(window)
                                    relay.down.faults.blackouts.append(window)
                finished = trio.current_time()
                assert got == list(range(COUNT))
                assert finished - blackout_started > BLACKOUT  # the traffic spanned it
                counters = (relay.up.counters, relay.down.counters)
                assert all(c.blacked_out > 0 and c.lost > 0 for c in counters), counters
                (link,) = client.statistics().links
                assert link.state == "connected"  # the same link, up since before it:
                assert link.up_since is not None and link.up_since < blackout_started
        nursery.cancel_scope.cancel()
