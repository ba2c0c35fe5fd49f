"""In-memory clusters: services and clients in one trio run, over `memory://` plugins.

Works under `trio.testing.MockClock(autojump_threshold=0)`: nothing here touches a socket or
the wall clock, so whole systems run deterministically in virtual time.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import attrs

from .._service import RunningService, Service, open_client
from ..rpc import Client

__all__ = ["Cluster", "open_cluster"]

_names = itertools.count(1)


@attrs.frozen
class Cluster:
    """A running set of services sharing one in-memory registry and transport."""

    registry: str
    transport: str
    client: Client
    running: dict[str, list[RunningService]]

    def node(self, service: str, index: int = 0) -> RunningService:
        return self.running[service][index]


@asynccontextmanager
async def open_cluster(
    *services: Service, name: str | None = None, seed: int = 0
) -> AsyncIterator[Cluster]:
    """Run `services` (each instance once; pass several with one name for replicas) on a fresh
    in-memory registry and transport, and a client for them; all closed on exit."""
    name = name or f"cluster-{next(_names)}"
    registry, transport = f"memory://{name}", f"memory://{name}"
    rng = random.Random(seed)
    running: dict[str, list[RunningService]] = {}
    async with AsyncExitStack() as stack:
        for service in services:
            service.registry, service.transport, service.broker = registry, transport, transport
            service.rng = random.Random(rng.getrandbits(64))
            r = await stack.enter_async_context(service.run())
            running.setdefault(service.name, []).append(r)
        client = await stack.enter_async_context(
            open_client(
                registry=registry,
                transport=transport,
                broker=transport,
                rng=random.Random(rng.getrandbits(64)),
            )
        )
        yield Cluster(registry, transport, client, running)
