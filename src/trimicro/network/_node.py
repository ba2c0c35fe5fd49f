"""`open_network_node`: a micro network node on trio.

A node joins the tunnel (links to its peers, dialled and accepted), runs a router over its
site's registry, and serves the network service twice: on its site's transport (so local
clients send calls through it with `TRIMICRO_PROXY`) and on its tunnel channel (its id, so
other nodes forward calls to it). Requests for any other service are forwarded along the
cheapest route: local services through the local client, remote ones through the tunnel to
the route's gateway node, which forwards again. The caller's budget and cancellation travel
with every hop.

Its nursery owns the tasks: the network service, the tunnel server, one reader per session
on the `network` and `control` channels, the announcer (30 s), the pruner (90 s), the link
watcher, the advert pump and the resolver (60 s). Leaving the block sends `close` to the
peers, then stops everything in order.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import trio

from .._service import RunningService, Service
from ..nursery import open_owned_nursery, run_periodic
from ..registry import open_registry
from ..routing import DEFAULT_DAMPING, DampingParams, Route, Router, Strategy, open_router
from ..rpc import errors
from ..rpc._forward import PUBLISH_ENDPOINT, PublishRequest
from ..session import Transport, load_transport
from ..session.tunnel import Tunnel, TunnelOptions, TunnelSession, TunnelTransport, open_tunnel
from ._adverts import NETWORK_LINK, RoutePaths, Stamps, accept, link_metric, outgoing
from ._graph import ANNOUNCE_INTERVAL, PRUNE_AFTER, NodeInfo, PeerGraph
from ._messages import (
    AdvertMessage,
    Close,
    Connect,
    MalformedMessage,
    Message,
    PeerAnnounce,
    decode,
    encode,
)
from ._resolver import LINK_ADDRESS, RESOLVE_INTERVAL, ResolveError, Resolver

__all__ = ["DEFAULT_NETWORK", "NETWORK_SERVICE", "NetworkNode", "NetworkOptions"]

log = logging.getLogger("trimicro.network")

DEFAULT_NETWORK = "trimicro"
NETWORK_SERVICE = "trimicro.network"
NETWORK_CHANNEL = "network"
CONTROL_CHANNEL = "control"
#: How often the link watcher looks at the tunnel's links.
LINK_CHECK_INTERVAL = 1.0
#: Published message ids remembered (so a message crossing a cycle is delivered once).
SEEN_MESSAGES = 10_000
SEEN_FOR = 60.0


@attrs.frozen
class NetworkOptions:
    """Timers (seconds) of a node; the defaults are go-micro's."""

    network: str = DEFAULT_NETWORK
    announce_interval: float = ANNOUNCE_INTERVAL
    prune_after: float = PRUNE_AFTER
    resolve_interval: float = RESOLVE_INTERVAL
    events_interval: float = 10.0
    table_interval: float = 120.0
    #: Flap damping of this site's routes, at their origin. Learned routes are not damped
    #: again at every hop: after a partition, path exploration withdraws and re-learns
    #: routes many times while the network converges, which is not flapping (RFC 7196).
    damping: DampingParams = DEFAULT_DAMPING
    tunnel: TunnelOptions | None = None


class NetworkNode:
    """A running network node; see `open_network_node`."""

    def __init__(
        self,
        info: NodeInfo,
        tunnel: Tunnel,
        router: Router,
        options: NetworkOptions,
        resolver: Resolver | None,
    ) -> None:
        self.info = info
        self.tunnel = tunnel
        self.router = router
        self.options = options
        self.graph = PeerGraph(info, prune_after=options.prune_after)
        self.paths = RoutePaths()
        self._stamps = Stamps()
        self._resolver = resolver
        self._dialled: set[str] = set()
        self._link_peers: set[str] = set()
        self._network_out: TunnelSession | None = None
        self._control_out: TunnelSession | None = None
        self.running: RunningService | None = None
        self.counters = {"adverts_in": 0, "adverts_out": 0, "looped": 0, "malformed": 0}
        self._seen: dict[str, float] = {}  # message id → when to forget it (insertion order)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def rpc_address(self) -> str:
        assert self.running is not None
        return self.running.address

    # -- routes, for the forwarder ---------------------------------------------------------

    async def routes_for(self, service: str) -> list[str | None]:
        """Where to send a call for `service`, cheapest first: `None` is our own registry,
        `tunnel://ID` the gateway node of a remote route."""
        targets: list[str | None] = []
        for route in self.router.lookup(service, network=self.options.network):
            target = None if route.link != NETWORK_LINK else f"tunnel://{route.gateway}"
            if target not in targets:
                targets.append(target)
        return targets

    def routes(self, **filters: str) -> list[Route]:
        return self.router.query(**filters)

    def link_cost(self, peer_id: str) -> int:
        """The metric of our link to `peer_id` (go-micro's formula; unmeasured is 10,000)."""
        best: int | None = None
        for link in self.tunnel.statistics().links:
            if link.peer == peer_id and link.state != "down":
                cost = link_metric(link.rtt, link.queue_delay)
                best = cost if best is None else min(best, cost)
        return best if best is not None else link_metric(None, 0.0)

    # -- publishing ------------------------------------------------------------------------

    def _first_time(self, message_id: str) -> bool:
        now = trio.current_time()
        while self._seen and (
            len(self._seen) >= SEEN_MESSAGES or next(iter(self._seen.values())) <= now
        ):
            del self._seen[next(iter(self._seen))]
        if message_id in self._seen:
            return False
        self._seen[message_id] = now + SEEN_FOR
        return True

    async def publish(self, request: PublishRequest) -> None:
        """A message published through us: to our site's broker, then to every peer the
        message has not been through (each delivers it once, by id)."""
        if request.id and not self._first_time(request.id):
            return
        assert self.running is not None
        client = self.running.client
        await client.publish_here(request)
        onward = attrs.evolve(request, path=[*request.path, self.id])
        async with trio.open_nursery() as nursery:
            for peer in sorted(self._link_peers - set(request.path)):
                nursery.start_soon(self._publish_to, peer, onward)

    async def _publish_to(self, peer: str, request: PublishRequest) -> None:
        assert self.running is not None
        try:
            await self.running.client.call(
                NETWORK_SERVICE, PUBLISH_ENDPOINT, request, address=f"tunnel://{peer}"
            )
        except errors.Error as exc:
            log.warning("network %s: publish to %s failed: %s", self.id, peer, exc)

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, session: TunnelSession | None, message: Message) -> None:
        if session is None:
            return
        try:
            await session.send(encode(message))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("network %s: cannot send %s: %s", self.id, type(message).__name__, exc)

    async def announce(self) -> None:
        await self._send(self._network_out, PeerAnnounce(self.graph.topology()))

    def _still_routed(self, route: Route) -> bool:
        """Whether we still have a route to the instance `route` reached (by any gateway)."""
        return any(
            r.address == route.address and r.router == route.router
            for r in self.router.query(route.service, network=route.network)
        )

    async def _pump_adverts(self) -> None:
        async for advert in self.router.adverts:
            message = outgoing(advert, self.id, self.paths, self._still_routed, self._stamps)
            if message is not None:
                self.counters["adverts_out"] += 1
                await self._send(self._control_out, message)

    # -- receiving -------------------------------------------------------------------------

    async def _serve_channel(self, channel: str) -> None:
        async with self.tunnel.listen(channel) as listener, trio.open_nursery() as nursery:
            async for session in listener:
                nursery.start_soon(self._read_session, session)

    async def _read_session(self, session: TunnelSession) -> None:
        async with session:
            try:
                async for data in session:
                    try:
                        message = decode(data)
                    except MalformedMessage as exc:
                        self.counters["malformed"] += 1
                        log.warning("network %s: dropped a message: %s", self.id, exc)
                        continue
                    await self._handle(message)
            except trio.BrokenResourceError:
                pass  # the link under the session went down; the link watcher notices

    async def _handle(self, message: Message) -> None:
        now = trio.current_time()
        if isinstance(message, Connect):
            if message.node.id != self.id:
                await self.announce()
        elif isinstance(message, PeerAnnounce):
            sender = message.topology.node.id
            if sender in self._link_peers and self.graph.update(message.topology, now):
                log.info("network %s: new peer %s", self.id, sender)
                self.router.solicit()  # its whole table, please
                await self.announce()  # and our topology, which now includes it
        elif isinstance(message, Close):
            self._forget(message.node.id, "closed")
        elif isinstance(message, AdvertMessage):
            if message.sender == self.id or message.sender not in self._link_peers:
                return  # our own, or from a node we have no link to
            self.counters["adverts_in"] += 1
            advert, looped = accept(message, self.id, self.link_cost(message.sender), self.paths)
            self.counters["looped"] += looped
            self.router.process(advert)

    def _forget(self, node_id: str, why: str) -> None:
        if node_id == self.id:
            return
        self.graph.remove(node_id)
        withdrawn = self.router.drop_gateway(node_id)
        log.info("network %s: peer %s %s; %d routes withdrawn", self.id, node_id, why, withdrawn)

    # -- periodic work ---------------------------------------------------------------------

    async def _watch_links(self) -> None:
        while True:
            peers = {link.peer for link in self.tunnel.statistics().links if link.peer}
            for gone in sorted(self._link_peers - peers):
                self._forget(gone, "lost its link")
            joined = peers - self._link_peers
            self._link_peers = peers
            if joined:
                await self._send(self._network_out, Connect(self.info))
                await self.announce()
                self.router.solicit()
            await trio.sleep(LINK_CHECK_INTERVAL)

    async def _prune(self) -> None:
        for node_id in self.graph.prune(trio.current_time()):
            self._forget(node_id, f"silent for {self.options.prune_after:g} s")
        self.paths.retain({route.key for route in self.router.query()})

    async def _resolve(self) -> None:
        if self._resolver is None:
            return
        try:
            addresses = await self._resolver()
        except ResolveError as exc:
            log.warning("network %s: %s", self.id, exc)
            return
        for address in addresses:
            if address not in self._dialled and address != self.info.address:
                self._dialled.add(address)
                self.tunnel.keep_peer(address)

    async def _say_goodbye(self) -> None:
        with trio.move_on_after(1):
            await self._send(self._network_out, Close(self.info))


def _node_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@asynccontextmanager
async def open_network_node(
    *,
    registry: str,
    link_transport: Transport | None = None,
    address: str | None = "127.0.0.1:8085",
    transport: str | None = None,
    rpc_address: str | None = None,
    peers: Sequence[str] = (),
    resolver: Resolver | None = None,
    token: str | None = None,
    id: str | None = None,
    name: str = NETWORK_SERVICE,
    broker: str | None = None,
    options: NetworkOptions | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[NetworkNode]:
    """Run a network node for the duration of the block.

    `registry`: this site's registry URL; `link_transport` carries links between nodes (QUIC
    by default) and listens on `address` (None: dial only, as behind NAT); `peers` are dialled
    and kept; `resolver` finds more every minute; `token`: the network's shared secret.
    `transport`/`rpc_address`: where the network service listens for this site's clients;
    `broker`: the site's broker, where messages published through the network arrive.

    Example::

        async with open_network_node(registry="mdns://?domain=a", peers=["10.0.0.2:8085"]):
            await trio.sleep_forever()   # calls to any service now cross the network
    """
    options = options or NetworkOptions()
    rng = rng or random.Random()
    node_id = id or _node_id(rng)
    link_transport = link_transport or load_transport("quic://")
    async with (
        open_tunnel(
            link_transport,
            address=address,
            peers=peers,
            token=token,
            id=node_id,
            rng=random.Random(rng.getrandbits(64)),
            options=options.tunnel,
        ) as tunnel,
        open_registry(registry) as site_registry,
        open_router(
            site_registry,
            id=node_id,
            network=options.network,
            strategy=Strategy.BEST,
            damping=options.damping,
            damp_learned=False,
            events_interval=options.events_interval,
            table_interval=options.table_interval,
            rng=random.Random(rng.getrandbits(64)),
        ) as router,
    ):
        info = NodeInfo(node_id, tunnel.address or "")
        node = NetworkNode(info, tunnel, router, options, resolver)
        node._dialled.update(peers)
        tunnel_transport = TunnelTransport(tunnel)
        service = _network_service(node, name, registry, transport, broker, rpc_address, rng)
        service.transports = {tunnel_transport.scheme: tunnel_transport}
        service.forward(node.routes_for, publish=node.publish)
        async with service.run() as running, open_owned_nursery() as nursery:
            node.running = running
            await nursery.start(tunnel_transport.serve, running.server.serve_connection, node_id)
            nursery.start_soon(node._serve_channel, NETWORK_CHANNEL)
            nursery.start_soon(node._serve_channel, CONTROL_CHANNEL)
            node._network_out = await tunnel.dial(NETWORK_CHANNEL, mode="multicast")
            node._control_out = await tunnel.dial(CONTROL_CHANNEL, mode="multicast")
            nursery.start_soon(node._watch_links)
            nursery.start_soon(node._pump_adverts)
            nursery.start_soon(run_periodic, node.announce, options.announce_interval)
            nursery.start_soon(run_periodic, node._prune, options.prune_after)
            nursery.start_soon(run_periodic, node._resolve, options.resolve_interval)
            try:
                yield node
            finally:
                with trio.CancelScope(shield=True):
                    await node._say_goodbye()
                nursery.cancel_scope.cancel()


def _network_service(
    node: NetworkNode,
    name: str,
    registry: str,
    transport: str | None,
    broker: str | None,
    rpc_address: str | None,
    rng: random.Random,
) -> Service:
    from ._service import add_network_endpoints

    service = Service(
        name,
        registry=registry,
        transport=transport,
        address=rpc_address,
        broker=broker,
        node_metadata={LINK_ADDRESS: node.info.address, "node_id": node.id},
        rng=random.Random(rng.getrandbits(64)),
    )
    add_network_endpoints(service, node)
    return service
