"""A userspace UDP relay with seeded path faults, between real sockets (and real processes).

    async with open_udp_relay("127.0.0.1:4433", up=PathFaults(loss=0.1)) as relay:
        ...connect to relay.address instead of the server...
        relay.up.counters.bytes_delivered     # client -> server
        relay.down.counters.bytes_sent        # server -> client

Each client address gets its own upstream socket, so the server sees one peer per client.
`up` is the client-to-server direction, `down` the way back; their `PathFaults` (delay,
loss, duplication, reordering, blackouts) and `PathCounters` are the in-memory network's
(`_paths.py`). Blackout windows are in trio time (`trio.current_time()`).

From a shell: `python -m trimicro.testing._relay TARGET [--listen ADDR] [--loss P] [--delay S]`
prints the relay's address and forwards until interrupted.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from ..session._address import format_address, parse_address
from ..session._quic_datagram import Address, DatagramSocket, UdpNetwork
from ._paths import DelayLine, Link, PathFaults

__all__ = ["MAX_RELAY_CLIENTS", "UdpRelay", "open_udp_relay"]

#: Client addresses a relay serves at once; datagrams from more are dropped.
MAX_RELAY_CLIENTS = 64


class UdpRelay:
    """Forwards datagrams between clients and `target`, through `up` and `down` links."""

    def __init__(
        self,
        listener: DatagramSocket,
        target: tuple[str, int],
        *,
        up: Link,
        down: Link,
        seed: int = 0,
        network: UdpNetwork | None = None,
    ) -> None:
        self.up = up
        self.down = down
        self._listener = listener
        self._target = target
        self._network = network or UdpNetwork()
        self._rng = random.Random(seed)
        self._line = DelayLine()
        self._upstreams: dict[Address, DatagramSocket] = {}

    @property
    def address(self) -> str:
        host, port = self._listener.local_address[:2]
        return format_address(str(host), int(port))

    async def run(self) -> None:
        """Relay until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._line.run)
            try:
                while True:
                    data, client = await self._listener.recvfrom()
                    upstream = await self._upstream(client, nursery)
                    if upstream is not None:
                        send = _sender(upstream, data, self._target)
                        await self._forward(self.up, data, send)
            finally:
                with trio.CancelScope(shield=True):
                    for sock in self._upstreams.values():
                        await sock.aclose()

    async def _upstream(self, client: Address, nursery: trio.Nursery) -> DatagramSocket | None:
        sock = self._upstreams.get(client)
        if sock is None and len(self._upstreams) < MAX_RELAY_CLIENTS:
            sock, _ = await self._network.dial(*self._target)
            self._upstreams[client] = sock
            nursery.start_soon(self._relay_down, sock, client)
        return sock

    async def _relay_down(self, upstream: DatagramSocket, client: Address) -> None:
        while True:
            try:
                data, _ = await upstream.recvfrom()
            except OSError:
                continue  # the target is not listening (yet): ICMP on the dialled socket
            await self._forward(self.down, data, _sender(self._listener, data, client))

    async def _forward(self, link: Link, data: bytes, send: Callable[[], Awaitable[None]]) -> None:
        now = trio.current_time()
        for at in link.plan(self._rng, len(data), now):
            if at <= now:
                await send()
                link.delivered(len(data))
            elif not self._line.put(at, _counted(send, link, len(data))):
                link.counters.overflowed += 1


def _sender(sock: DatagramSocket, data: bytes, addr: Address) -> Callable[[], Awaitable[None]]:
    async def send() -> None:
        try:
            await sock.sendto(data, addr)
        except (OSError, trio.ClosedResourceError):
            pass  # UDP: a datagram that cannot leave is lost

    return send


def _counted(
    send: Callable[[], Awaitable[None]], link: Link, size: int
) -> Callable[[], Awaitable[None]]:
    async def deliver() -> None:
        await send()
        link.delivered(size)

    return deliver


@asynccontextmanager
async def open_udp_relay(
    target: str,
    *,
    up: PathFaults | None = None,
    down: PathFaults | None = None,
    seed: int = 0,
    listen: str = "127.0.0.1:0",
) -> AsyncIterator[UdpRelay]:
    """A relay to `target` ("host:port") on `listen`, running until the block ends."""
    network = UdpNetwork()
    listener = await network.bind(*parse_address(listen))
    relay = UdpRelay(
        listener,
        parse_address(target),
        up=Link(up or PathFaults()),
        down=Link(down or PathFaults()),
        seed=seed,
        network=network,
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.run)
            yield relay
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()


def main(argv: list[str] | None = None) -> None:
    """Run a relay from a shell (for tests that start real processes)."""
    parser = argparse.ArgumentParser(prog="python -m trimicro.testing._relay")
    parser.add_argument("target", help="HOST:PORT to relay to")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--seed", type=int, default=0)
    for name in ("delay", "loss", "duplicate", "reorder"):
        parser.add_argument(f"--{name}", type=float, default=0.0)
    args = parser.parse_args(argv)
    faults = PathFaults(
        delay=args.delay, loss=args.loss, duplicate=args.duplicate, reorder=args.reorder
    )

    async def serve() -> None:
        async with open_udp_relay(
            args.target,
            up=faults,
            down=attrs.evolve(faults, blackouts=[]),
            seed=args.seed,
            listen=args.listen,
        ) as relay:
            print(relay.address, flush=True)
            await trio.sleep_forever()

    trio.run(serve)


if __name__ == "__main__":
    main()
