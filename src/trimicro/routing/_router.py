"""`open_router`: the trio driver around `RouterCore`.

    async with open_router(registry, id="r-1", rng=random.Random(seed)) as router:
        nursery.start_soon(send_to_peers, router.adverts)   # the network layer sends these
        router.process(advert_from_a_peer)
        routes = router.lookup("greeter")                   # cheapest first

It owns two tasks: one follows the registry (a watch, re-read in full whenever the watch is
opened again after a failure, under `supervise`), one runs the core's timers and moves its
adverts into `router.adverts`, a channel of `OUTGOING_BUFFER` adverts. A consumer that stops
reading stalls only that task: changes pile up in the flap damper (one entry per route, not
per change) and lookups and processing go on. Leaving the block cancels both tasks and closes
the channel, so a consumer's `async for` ends.
"""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ..nursery import open_owned_nursery, supervise
from ..registry import Registry, WatchEvent
from ._advert import (
    ADVERTISE_EVENTS_INTERVAL,
    ADVERTISE_TABLE_INTERVAL,
    DEFAULT_ADVERT_TTL,
    DEFAULT_LIMITS,
    Advert,
    AdvertLimits,
)
from ._core import DEFAULT_NETWORK, RouterCore, RouterStatistics
from ._flap import DEFAULT_DAMPING, DampingParams
from ._route import Route
from ._strategy import Strategy
from ._table import ANY, WATCH_QUEUE_SIZE, RouteEvent, TableWatcher, WatchOverflowed

__all__ = ["OUTGOING_BUFFER", "RouteWatcher", "Router", "open_router"]


#: Adverts waiting for the network layer; past it the advertising task waits.
OUTGOING_BUFFER = 16

_Local = dict[tuple[str, str], list[str]]


async def _read_registry(registry: Registry) -> _Local:
    """Every (service, version) → node addresses, one lookup per service (as go-micro)."""
    names = sorted({record.name for record in await registry.list_services()})
    local: _Local = {}
    for name in names:
        for record in await registry.get_service(name):
            local[(record.name, record.version)] = [node.address for node in record.nodes]
    return local


class RouteWatcher:
    """Async iterator of table changes: `RouteEvent`s, or `WatchOverflowed` when it fell
    behind (then re-read with `router.query()`); ends when the router stops."""

    def __init__(self, router: Router, watcher: TableWatcher) -> None:
        self._router = router
        self._watcher = watcher

    def __aiter__(self) -> RouteWatcher:
        return self

    async def __anext__(self) -> RouteEvent | WatchOverflowed:
        while True:
            changed = self._router._table_changed
            event = self._watcher.next_event()
            if event is not None:
                await trio.lowlevel.checkpoint()
                return event
            if self._router._closed:
                raise StopAsyncIteration
            await changed.wait()


class Router:
    """A running router; obtained from `open_router`."""

    def __init__(self, core: RouterCore, registry: Registry) -> None:
        self._core = core
        self._registry = registry
        self._send, self.adverts = trio.open_memory_channel[Advert](OUTGOING_BUFFER)
        self._wakeup = trio.Event()  # for the advertising task: there may be adverts to send
        self._table_changed = trio.Event()  # for watchers
        self._closed = False

    @property
    def id(self) -> str:
        return self._core.id

    @property
    def network(self) -> str:
        return self._core.network

    @property
    def core(self) -> RouterCore:
        """The sans-io state (for inspection: table, damper)."""
        return self._core

    # --- the API the network layer, the proxy and the selector use ------------------------

    def lookup(
        self,
        service: str,
        *,
        router: str | None = None,
        network: str | None = None,
        gateway: str | None = None,
    ) -> list[Route]:
        """Routes to `service`, cheapest first, matching the filters that are not None."""
        now = self._expire()
        return self._core.lookup(service, router=router, network=network, gateway=gateway, now=now)

    def query(self, service: str = ANY, **filters: str) -> list[Route]:
        """The table, filtered as `Table.query` (`ANY` matches anything), cheapest first."""
        self._expire()
        return self._core.table.query(service, **filters)

    def _expire(self) -> float:
        # Lookups see no route past its TTL, even while the advertising task is stalled.
        now = trio.current_time()
        if self._core.expire(now):
            self._notify()
        return now

    def process(self, advert: Advert) -> None:
        """Apply an advert from another router (ours and those over a limit are dropped)."""
        self._core.receive_advert(advert, trio.current_time())
        self._wake()

    def solicit(self) -> None:
        """Ask every router for its whole table."""
        self._core.solicit(trio.current_time())
        self._wake()

    def drop_router(self, router_id: str) -> int:
        """Withdraw the routes of a router that left the network."""
        dropped = self._core.drop_router(router_id, trio.current_time())
        self._notify()
        return dropped

    def drop_gateway(self, gateway: str) -> int:
        """Withdraw the learned routes through `gateway` (a peer whose link died)."""
        dropped = self._core.drop_gateway(gateway, trio.current_time())
        self._notify()
        return dropped

    @asynccontextmanager
    async def watch(
        self, service: str | None = None, *, size: int = WATCH_QUEUE_SIZE
    ) -> AsyncIterator[RouteWatcher]:
        watcher = self._core.table.watch(service, size=size)
        try:
            yield RouteWatcher(self, watcher)
        finally:
            watcher.close()

    def statistics(self) -> RouterStatistics:
        return self._core.statistics()

    # --- the tasks -----------------------------------------------------------------------

    def _wake(self) -> None:
        """Something changed: the advertising task and the watchers take a look."""
        self._wakeup.set()
        self._wakeup = trio.Event()
        self._notify()

    def _notify(self) -> None:
        self._table_changed.set()
        self._table_changed = trio.Event()

    async def _follow_registry(self) -> None:
        async with self._registry.watch() as watcher:
            # Re-read after the watch is open, so no change falls between the two.
            self._core.replace_local(await _read_registry(self._registry), trio.current_time())
            self._notify()
            async for event in watcher:
                self._apply(event)

    def _apply(self, event: WatchEvent) -> None:
        record = event.service
        addresses = [] if event.action == "delete" else [n.address for n in record.nodes]
        self._core.set_local(record.name, record.version, addresses, trio.current_time())
        self._notify()  # local changes wait for the events tick: no need to wake the advertiser

    async def _advertise(self) -> None:
        while True:
            wakeup = self._wakeup  # before sending: a wake-up while we wait to send counts
            now = trio.current_time()
            self._core.handle_timer(now)  # may expire routes
            self._notify()
            for advert in self._core.adverts_to_send(now):
                await self._send.send(advert)
            with trio.move_on_at(self._core.get_timer()):
                await wakeup.wait()

    def _close(self) -> None:
        self._closed = True
        self._wake()


@asynccontextmanager
async def open_router(
    registry: Registry,
    *,
    id: str,
    rng: random.Random,
    network: str = DEFAULT_NETWORK,
    gateway: str = "",
    strategy: Strategy = Strategy.LOCAL,
    damping: DampingParams = DEFAULT_DAMPING,
    limits: AdvertLimits = DEFAULT_LIMITS,
    events_interval: float = ADVERTISE_EVENTS_INTERVAL,
    table_interval: float = ADVERTISE_TABLE_INTERVAL,
    advert_ttl: float = DEFAULT_ADVERT_TTL,
    damp_learned: bool = True,
) -> AsyncIterator[Router]:
    """Run a router over `registry` until the block ends.

    Local routes (metric 1, or 2 with a `gateway`) are built from the registry before this
    yields, and the announce advert is the first thing in `router.adverts`; a registry that
    cannot be read raises here. `rng` jitters the registry watch's restart backoff.
    """
    core = RouterCore(
        id,
        network=network,
        gateway=gateway,
        strategy=strategy,
        damping=damping,
        limits=limits,
        events_interval=events_interval,
        table_interval=table_interval,
        advert_ttl=advert_ttl,
        damp_learned=damp_learned,
    )
    router = Router(core, registry)
    core.replace_local(await _read_registry(registry), trio.current_time())
    core.start(trio.current_time())
    follow = functools.partial(supervise, router._follow_registry, name="router registry watch")
    async with router._send, open_owned_nursery() as nursery:
        nursery.start_soon(functools.partial(follow, rng=rng))
        nursery.start_soon(router._advertise)
        try:
            yield router
        finally:
            router._close()
            nursery.cancel_scope.cancel()
