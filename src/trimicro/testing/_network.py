"""A simulated micro network: N network nodes, a service in each site, one trio run.

    async with open_simulated_network(25, seed=7) as net:     # under MockClock
        await net.wait_converged()                            # every node routes everywhere
        net.partition(range(0, 12))                           # cut the network in two
        ...
        net.heal()

Links are in-memory connections with a one-way delay; a partition drops every message
between the two sides (the links hang, as through a real cut, until keepalives notice).
Each node's site has its own registry with one service, `svc-I`. Topologies are random but
connected (a random spanning tree plus extra edges), from the seed.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

from .._service import Service
from ..network import NetworkNode, NetworkOptions, open_network_node
from ..session import MemoryTransport
from ._shaped import Shape, ShapedTransport

__all__ = ["SimulatedNetwork", "open_simulated_network", "random_topology"]

_runs = itertools.count(1)


def random_topology(n: int, rng: random.Random, extra: float = 0.5) -> list[tuple[int, int]]:
    """A connected graph on `n` nodes: a random spanning tree plus `extra * n` more edges."""
    edges: set[tuple[int, int]] = set()
    order = list(range(n))
    rng.shuffle(order)
    for k in range(1, n):
        a, b = order[k], order[rng.randrange(k)]
        edges.add((min(a, b), max(a, b)))
    for _ in range(int(extra * n)):
        a, b = rng.sample(range(n), 2) if n > 1 else (0, 0)
        if a != b:
            edges.add((min(a, b), max(a, b)))
    return sorted(edges)


@attrs.define
class SimulatedNetwork:
    nodes: list[NetworkNode]
    edges: list[tuple[int, int]]
    services: list[str]
    run: str
    _shapes: list[Shape]
    #: Per site: when its service's `Svc.Sleep` handler ended (cancelled or not).
    sleep_ended: dict[int, float] = attrs.field(factory=dict)
    #: Per site: the messages its service's subscriber to topic `news` received.
    received: dict[int, list[Any]] = attrs.field(factory=dict)

    def registry(self, index: int) -> str:
        """The registry URL of node `index`'s site."""
        return f"memory://{self.run}-site{index}"

    def broker(self, index: int) -> str:
        """The broker URL of node `index`'s site."""
        return f"memory://{self.run}-site{index}"

    @property
    def transport(self) -> str:
        """The transport URL every site's services and clients use."""
        return f"memory://{self.run}-rpc"

    def partition(self, side: Iterable[int]) -> None:
        """Cut the nodes in `side` off from the rest."""
        chosen = set(side)
        for index, shape in enumerate(self._shapes):
            shape.side = 1 if index in chosen else 0

    def heal(self) -> None:
        for shape in self._shapes:
            shape.side = 0

    def missing_routes(self, nodes: Sequence[int] | None = None) -> int:
        """(node, service) pairs with no route, over `nodes` (default all)."""
        picked = range(len(self.nodes)) if nodes is None else nodes
        missing = 0
        for i in picked:
            known = {r.service for r in self.nodes[i].routes()}
            missing += sum(s not in known for s in self.services)
        return missing

    async def wait_converged(self, *, poll: float = 0.5) -> float:
        """Wait until every node has a route to every service; the virtual time it took."""
        start = trio.current_time()
        while self.missing_routes():  # noqa: ASYNC110 - 100 tables, read in virtual time
            await trio.sleep(poll)
        return trio.current_time() - start

    def adverts_sent(self) -> int:
        return sum(node.counters["adverts_out"] for node in self.nodes)


def _site_service(index: int, net: SimulatedNetwork) -> Service:
    service = Service(
        f"svc-{index}",
        registry=net.registry(index),
        transport=net.transport,
        broker=net.broker(index),
    )
    sleep_ended = net.sleep_ended
    received = net.received.setdefault(index, [])

    @service.subscribe("news")
    async def news(message: Any) -> None:
        received.append(message)

    @service.endpoint("Svc.Where")
    async def where(req: None) -> int:
        return index

    @service.endpoint("Svc.Sleep")
    async def sleep(seconds: float) -> None:
        try:
            await trio.sleep(seconds)
        finally:
            sleep_ended[index] = trio.current_time()

    return service


@asynccontextmanager
async def open_simulated_network(
    n: int,
    *,
    edges: list[tuple[int, int]] | None = None,
    delay: float = 0.005,
    seed: int = 0,
    options: NetworkOptions | None = None,
    token: str | None = None,
    tokens: Mapping[int, str | None] | None = None,
) -> AsyncIterator[SimulatedNetwork]:
    """Start `n` nodes on `edges` (default: `random_topology`), each with a site service;
    every node knows `token`, except those `tokens` gives another (or None)."""
    rng = random.Random(seed)
    edges = random_topology(n, rng) if edges is None else edges
    run = f"sim{next(_runs)}"
    rpc = f"memory://{run}-rpc"
    shapes = [Shape(delay) for _ in range(n)]
    dial: dict[int, list[str]] = {i: [] for i in range(n)}
    for a, b in edges:
        dial[b].append(f"{run}-n{a}")  # the higher index dials the lower
    net = SimulatedNetwork([], edges, [f"svc-{i}" for i in range(n)], run, shapes)
    async with AsyncExitStack() as stack:
        for i in range(n):
            registry = net.registry(i)
            await stack.enter_async_context(_site_service(i, net).run())
            node = await stack.enter_async_context(
                open_network_node(
                    registry=registry,
                    link_transport=ShapedTransport(MemoryTransport(f"{run}-links"), shapes[i]),
                    address=f"{run}-n{i}",
                    transport=rpc,
                    broker=net.broker(i),
                    rpc_address=f"{run}-net{i}:0",
                    peers=dial[i],
                    token=(tokens or {}).get(i, token),
                    id=f"n{i}",
                    options=options,
                    rng=random.Random(rng.getrandbits(64)),
                )
            )
            net.nodes.append(node)
        yield net
