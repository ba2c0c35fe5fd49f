"""`mdns://`: the default registry, multicast DNS service discovery (RFC 6762 / RFC 6763).

    async with open_mdns_registry("mdns://?domain=site-a") as registry:
        await registry.register(record, ttl=60)
        records = await registry.get_service("greeter")

There is no server: each process answers for its own registrations from a responder on
224.0.0.251:5353 and caches what it hears. A lookup multicasts one query, waits `timeout`
(default 0.15 s; go-micro waits 0.1 s) for answers, and returns its merged view of local
registrations and heard instances. Registrations are announced when made or refreshed and
withdrawn with goodbye packets on `deregister` and when the registry closes, so peers see a
node go at once; one that dies silently disappears when its TTL runs out.

`?domain=NAME` (default `trimicro`) keeps sites apart; `?timeout=SECONDS` sets the query
window; `?interfaces=lo,eth0` (names or IPv4 addresses) limits the interfaces used. The wire
format is in `_mdns_wire` and docs/protocol.md; the protocol state machine in `_mdns_proto`.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlsplit

import attrs
import trio

from ..nursery import open_owned_nursery
from ._base import RegistryError
from ._mdns_net import MulticastSocket, open_multicast, resolve_interface
from ._mdns_proto import MdnsCore, MdnsStatistics
from ._mdns_wire import validate_domain
from ._model import ServiceRecord, WatchEvent

__all__ = ["MdnsOptions", "MdnsRegistry", "open_mdns_registry", "parse_mdns_url"]

DEFAULT_DOMAIN = "trimicro"
DEFAULT_TIMEOUT = 0.15
MAX_TIMEOUT = 10.0
#: Events a watcher may fall behind by before it is closed with an error (as `memory://`).
WATCH_QUEUE_SIZE = 1024
#: How long closing waits to send goodbyes, even when the surrounding scope is cancelled.
GOODBYE_TIMEOUT = 1.0
_OPTIONS = ("domain", "timeout", "interfaces")


@attrs.frozen
class MdnsOptions:
    domain: str = DEFAULT_DOMAIN
    timeout: float = DEFAULT_TIMEOUT
    interfaces: tuple[str, ...] | None = None  # None: loopback and every LAN interface


def parse_mdns_url(url: str) -> MdnsOptions:
    """`mdns://[?domain=NAME][&timeout=SECONDS][&interfaces=IF,IF]`; ValueError names a fault."""
    parts = urlsplit(url)
    if parts.scheme != "mdns" or parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"registry URL {url!r}: expected mdns://[?domain=NAME&timeout=SECONDS]")
    try:
        fields = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ValueError(f"registry URL {url!r}: {exc}") from None
    query = dict(fields)
    unknown = sorted({k for k, _ in fields} - set(_OPTIONS))
    if unknown or len(query) != len(fields):
        what = f"unknown option {unknown[0]!r}" if unknown else "an option is repeated"
        raise ValueError(f"registry URL {url!r}: {what} (known: {', '.join(_OPTIONS)})")
    try:
        return _options(query)
    except ValueError as exc:
        raise ValueError(f"registry URL {url!r}: {exc}") from None


def _options(query: dict[str, str]) -> MdnsOptions:
    domain = validate_domain(query.get("domain", DEFAULT_DOMAIN))
    timeout = _timeout(query.get("timeout"))
    interfaces = query.get("interfaces")
    if interfaces is None:
        return MdnsOptions(domain, timeout)
    names = [part.strip() for part in interfaces.split(",")]
    if not all(names):
        raise ValueError(f"interfaces {interfaces!r} has an empty entry")
    return MdnsOptions(domain, timeout, tuple(resolve_interface(n) for n in names))


def _timeout(text: str | None) -> float:
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"timeout {text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT:
        raise ValueError(f"timeout {text!r} must be above 0 and at most {MAX_TIMEOUT} seconds")
    return value


class _Watcher:
    """A bounded queue of events; one that falls behind is closed with an error."""

    def __init__(self, wants: Callable[[WatchEvent], bool]) -> None:
        self._wants = wants
        self._send, self._receive = trio.open_memory_channel[WatchEvent](WATCH_QUEUE_SIZE)
        self._overflowed = False

    def offer(self, event: WatchEvent) -> None:
        if not self._wants(event):
            return
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._overflowed = True
            self._send.close()
        except trio.ClosedResourceError:
            pass

    def close(self) -> None:
        self._send.close()

    # An iterator rather than an async generator: a consumer may stop after any event (break,
    # return) without leaving a half-run generator behind for the garbage collector.
    def __aiter__(self) -> _Watcher:
        return self

    async def __anext__(self) -> WatchEvent:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self._overflowed:
                raise RegistryError(
                    f"watcher fell behind by more than {WATCH_QUEUE_SIZE} events"
                ) from None
            raise StopAsyncIteration from None


class MdnsRegistry:
    """The `Registry` for `mdns://`: drives an `MdnsCore` with a socket and trio's clock."""

    def __init__(self, core: MdnsCore, sock: MulticastSocket, options: MdnsOptions) -> None:
        self.options = options
        self._core = core
        self._sock = sock
        self._watchers: set[_Watcher] = set()
        self._timers_changed = trio.Event()
        self._send_lock = trio.Lock()  # datagrams leave in the order the core produced them
        self._closed = False
        self._window_end = -math.inf  # end of the current query's answer window

    async def register(self, record: ServiceRecord, *, ttl: float | None = None) -> None:
        self._check_open()
        self._core.register(record, ttl, trio.current_time())
        await self._pump()

    async def deregister(self, record: ServiceRecord) -> None:
        self._check_open()
        self._core.deregister(record, trio.current_time())
        await self._pump()

    async def get_service(self, name: str) -> list[ServiceRecord]:
        await self._query()
        return self._core.services(trio.current_time(), name)

    async def list_services(self) -> list[ServiceRecord]:
        await self._query()
        return self._core.services(trio.current_time())

    @asynccontextmanager
    async def watch(self, service: str | None = None) -> AsyncIterator[_Watcher]:
        self._check_open()
        watcher = _Watcher(lambda e: service is None or e.service.name == service)
        self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)
            watcher.close()

    def statistics(self) -> MdnsStatistics:
        return self._core.statistics()

    def _check_open(self) -> None:
        if self._closed:
            raise RegistryError("the mDNS registry is closed")

    async def _query(self) -> None:
        """Ask the site, then wait out the answer window; concurrent lookups share one query."""
        self._check_open()
        now = trio.current_time()
        if now >= self._window_end:
            self._window_end = now + self.options.timeout
            self._core.query(now)
            await self._pump()
        await trio.sleep_until(self._window_end)

    async def _pump(self) -> None:
        """Hand the core's events to watchers and its datagrams to the socket."""
        while (event := self._core.next_event()) is not None:
            for watcher in list(self._watchers):
                watcher.offer(event)
        self._timers_changed.set()
        self._timers_changed = trio.Event()
        async with self._send_lock:
            for datagram in self._core.datagrams_to_send():
                await self._sock.send(datagram.data, datagram.destination)

    async def _receive_forever(self) -> None:
        while True:
            data, source = await self._sock.receive()
            self._core.receive_datagram(data, source, trio.current_time())
            await self._pump()

    async def _timers_forever(self) -> None:
        while True:
            changed = self._timers_changed
            with trio.move_on_at(self._core.get_timer()):
                await changed.wait()
            self._core.handle_timer(trio.current_time())
            await self._pump()

    async def _start(self) -> None:
        # Ask once at start: peers answer at once, so the first lookups and watch events
        # reflect the site without waiting for its next announcements.
        self._core.query(trio.current_time())
        await self._pump()

    async def _close(self) -> None:
        """Goodbyes for every registration, sent even if our caller is being cancelled."""
        self._closed = True
        self._core.close(trio.current_time())
        with trio.CancelScope(shield=True), trio.move_on_after(GOODBYE_TIMEOUT):
            await self._pump()
        for watcher in self._watchers:
            watcher.close()


@asynccontextmanager
async def open_mdns_registry(
    url: str = "mdns://", *, rng: random.Random | None = None
) -> AsyncIterator[MdnsRegistry]:
    """Open the mDNS registry for `url`; its responder and timers live inside this block.

    `rng` draws the id that marks this registry's queries (see `MdnsCore`).
    """
    options = parse_mdns_url(url)
    core = MdnsCore(options.domain, query_id=(rng or random.Random()).randrange(1, 1 << 16))
    async with open_multicast(options.interfaces) as sock, open_owned_nursery() as nursery:
        registry = MdnsRegistry(core, sock, options)
        nursery.start_soon(registry._receive_forever)
        nursery.start_soon(registry._timers_forever)
        try:
            await registry._start()
            yield registry
        finally:
            await registry._close()
            nursery.cancel_scope.cancel()
