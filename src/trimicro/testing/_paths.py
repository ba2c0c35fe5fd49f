"""An in-memory datagram network on trio's clock, with seeded path faults.

    async with open_memory_network(seed=1) as net:
        net.link("client", "server").faults.loss = 0.3     # one direction
        server = QuicTransport(network=net.host("server"))
        client = QuicTransport(network=net.host("client"))

Hosts are names (`net.host("10.0.0.1")`); a host named like a loopback address counts as
loopback for the transports. Each direction between two hosts is a `Link` with its own
`PathFaults` (one-way delay, loss, duplication, reordering, blackout windows) and
`PathCounters`. Everything runs on `trio.current_time()` and one seeded `random.Random`, so
it works under `MockClock(autojump_threshold=0)`: a QUIC handshake with 50 ms each way
takes exactly 0.1 virtual seconds. Sending to a port nobody bound is dropped, except that a
dialled (connected) socket then gets `ConnectionRefusedError`, as Linux reports ICMP.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from ..session._quic_datagram import Address

__all__ = [
    "IN_FLIGHT_LIMIT",
    "SOCKET_QUEUE",
    "DelayLine",
    "Link",
    "MemoryHost",
    "MemoryNetwork",
    "MemorySocket",
    "PathCounters",
    "PathFaults",
    "open_memory_network",
]

#: Datagrams a socket holds unread before more are dropped: about a Linux default receive
#: buffer (~208 KiB) of 1,200-byte datagrams.
SOCKET_QUEUE = 256
#: Datagrams waiting out their delay on one delay line (a router's queue); more are dropped.
IN_FLIGHT_LIMIT = 16384
#: Ephemeral ports handed out by `bind(host, 0)` and `dial`.
FIRST_EPHEMERAL_PORT = 49152


@attrs.define
class PathFaults:
    """What happens to datagrams on one direction of a path. Mutable: tests change faults
    mid-run. `blackouts` are `[start, end)` windows of trio time that drop everything."""

    delay: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.01
    blackouts: list[tuple[float, float]] = attrs.field(factory=list)

    def blacked_out(self, now: float) -> bool:
        return any(start <= now < end for start, end in self.blackouts)


@attrs.define
class PathCounters:
    """What a direction of a path did, in datagrams and bytes."""

    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_delivered: int = 0
    bytes_delivered: int = 0
    lost: int = 0
    blacked_out: int = 0
    overflowed: int = 0
    duplicated: int = 0
    reordered: int = 0


@attrs.define(eq=False)
class Link:
    """One direction of a path: its faults and its counters."""

    faults: PathFaults = attrs.field(factory=PathFaults)
    counters: PathCounters = attrs.field(factory=PathCounters)

    def plan(self, rng: random.Random, size: int, now: float) -> list[float]:
        """Delivery times for one datagram of `size` bytes sent `now` (none: dropped)."""
        counters, faults = self.counters, self.faults
        counters.datagrams_sent += 1
        counters.bytes_sent += size
        if faults.blacked_out(now):
            counters.blacked_out += 1
            return []
        if rng.random() < faults.loss:
            counters.lost += 1
            return []
        at = now + faults.delay
        if rng.random() < faults.reorder:
            counters.reordered += 1
            at += faults.reorder_delay
        if rng.random() < faults.duplicate:
            counters.duplicated += 1
            return [at, at]
        return [at]

    def delivered(self, size: int) -> None:
        self.counters.datagrams_delivered += 1
        self.counters.bytes_delivered += size


Delivery = Callable[[], Awaitable[None]]


class DelayLine:
    """Deliveries waiting for their time, run in time order by one task (`run`)."""

    def __init__(self, limit: int = IN_FLIGHT_LIMIT) -> None:
        self._limit = limit
        self._heap: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._changed = trio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, at: float, deliver: Delivery) -> bool:
        """Schedule `deliver` at trio time `at`; False (dropped) when the line is full."""
        if len(self._heap) >= self._limit:
            return False
        heapq.heappush(self._heap, (at, next(self._order), deliver))
        if self._heap[0][0] == at:
            self._changed.set()
        return True

    async def run(self) -> None:
        while True:
            next_at = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(next_at):
                await self._changed.wait()
            self._changed = trio.Event()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, deliver = heapq.heappop(self._heap)
                await deliver()


class MemoryNetwork:
    """Hosts, sockets and links of an in-memory datagram network (see the module doc)."""

    def __init__(self, *, seed: int = 0, faults: PathFaults | None = None) -> None:
        self.rng = random.Random(seed)
        self.default_faults = faults or PathFaults()
        self._links: dict[tuple[str, str], Link] = {}
        self._sockets: dict[Address, MemorySocket] = {}
        self._ports: dict[str, itertools.count[int]] = {}
        self._line = DelayLine()

    def link(self, src: str, dst: str) -> Link:
        """The `src` → `dst` direction (created with a copy of the default faults)."""
        key = (src, dst)
        if key not in self._links:
            faults = self.default_faults
            self._links[key] = Link(attrs.evolve(faults, blackouts=list(faults.blackouts)))
        return self._links[key]

    def host(self, name: str) -> MemoryHost:
        """A `DatagramNetwork` whose sockets live on host `name`."""
        return MemoryHost(self, name)

    async def run(self) -> None:
        """Deliver delayed datagrams (run it in a nursery; `open_memory_network` does)."""
        await self._line.run()

    # -- for sockets -----------------------------------------------------------------------

    def _register(self, sock: MemorySocket, port: int) -> Address:
        host = sock.host
        if port == 0:
            counter = self._ports.setdefault(host, itertools.count(FIRST_EPHEMERAL_PORT))
            port = next(p for p in counter if (host, p) not in self._sockets)
        address = (host, port)
        if address in self._sockets:
            raise OSError(errno.EADDRINUSE, f"{host}:{port} is already bound")
        self._sockets[address] = sock
        return address

    def _unregister(self, address: Address) -> None:
        self._sockets.pop(address, None)

    def _send(self, sender: MemorySocket, data: bytes, dst: Address) -> None:
        link = self.link(sender.host, str(dst[0]))
        now = trio.current_time()
        for at in link.plan(self.rng, len(data), now):
            if at <= now:
                self._arrive(sender, data, dst, link)
            elif not self._line.put(at, _later(self._arrive, sender, data, dst, link)):
                link.counters.overflowed += 1

    def _arrive(self, sender: MemorySocket, data: bytes, dst: Address, link: Link) -> None:
        receiver = self._sockets.get(dst)
        if receiver is None:
            if sender.connected_to == dst:
                sender._push(None)  # ICMP port unreachable, on a connected socket only
            return
        if receiver._push((data, sender.local_address)):
            link.delivered(len(data))
        else:
            link.counters.overflowed += 1


def _later(
    arrive: Callable[[MemorySocket, bytes, Address, Link], None],
    sender: MemorySocket,
    data: bytes,
    dst: Address,
    link: Link,
) -> Delivery:
    async def deliver() -> None:
        arrive(sender, data, dst, link)

    return deliver


class MemoryHost:
    """One host of a `MemoryNetwork`, as a `DatagramNetwork`."""

    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self.network = network
        self.name = name

    async def bind(self, host: str, port: int) -> MemorySocket:
        """A socket on this host (a host has one address: `host` is not consulted)."""
        await trio.lowlevel.checkpoint()
        return MemorySocket(self.network, self.name, port)

    async def dial(self, host: str, port: int) -> tuple[MemorySocket, Address]:
        await trio.lowlevel.checkpoint()
        peer = (host, port)
        return MemorySocket(self.network, self.name, 0, connected_to=peer), peer


Queued = tuple[bytes, Address] | None  # None: an ICMP error


class MemorySocket:
    """A socket of a `MemoryNetwork`; at most `SOCKET_QUEUE` datagrams wait unread."""

    def __init__(
        self,
        network: MemoryNetwork,
        host: str,
        port: int,
        *,
        connected_to: Address | None = None,
    ) -> None:
        self.host = host
        self.connected_to = connected_to
        self._network = network
        self._send_end, self._receive_end = trio.open_memory_channel[Queued](SOCKET_QUEUE)
        self.local_address: Address = network._register(self, port)
        self._closed = False

    def _push(self, item: Queued) -> bool:
        try:
            self._send_end.send_nowait(item)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True

    async def sendto(self, data: bytes, addr: Address) -> None:
        if self._closed:
            raise trio.ClosedResourceError("socket is closed")
        self._network._send(self, bytes(data), tuple(addr))
        await trio.lowlevel.checkpoint()

    async def recvfrom(self) -> tuple[bytes, Address]:
        try:
            item = await self._receive_end.receive()
        except trio.EndOfChannel:
            raise trio.ClosedResourceError("socket is closed") from None
        if item is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "port unreachable")
        return item

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._network._unregister(self.local_address)
            self._send_end.close()
            self._receive_end.close()
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def open_memory_network(
    *, seed: int = 0, faults: PathFaults | None = None
) -> AsyncIterator[MemoryNetwork]:
    """A `MemoryNetwork` delivering in the background until the block ends."""
    network = MemoryNetwork(seed=seed, faults=faults)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(network.run)
        yield network
        nursery.cancel_scope.cancel()
