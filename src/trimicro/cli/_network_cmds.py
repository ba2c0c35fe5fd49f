"""`trimicro network node|nodes|connections|routes|services|graph`."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import click
import trio

from .._config import ConfigError, resolve_network_token, resolve_registry
from .._service import open_client
from ..network import (
    NETWORK_SERVICE,
    NetworkNode,
    NetworkOptions,
    Resolver,
    dns_resolver,
    http_resolver,
    open_network_node,
    registry_resolver,
    static_resolver,
)
from ..nursery import open_owned_nursery
from ..registry import open_registry
from ..session.tunnel import TunnelOptions
from ._client_cmds import _run
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, emit_json, fail
from ._signals import first_signal

__all__ = ["network"]

DEFAULT_NODE_ADDRESS = "127.0.0.1:8085"
RESOLVERS = ("static", "registry", "dns", "http")


@click.group()
def network() -> None:
    """Run a network node, or ask one about the network."""


def _rpc_address(link_address: str) -> str:
    """The network service listens beside the links: the next port (any, for port 0)."""
    host, _, port = link_address.rpartition(":")
    return f"{host}:{int(port) + 1}" if port.isdigit() and int(port) else f"{host}:0"


def _check_address(flag: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        fail(f"{flag} {value!r}: expected HOST:PORT", EXIT_INPUT)


_SECONDS = click.FloatRange(min=0, min_open=True)


@network.command()
@click.option(
    "--address",
    default=DEFAULT_NODE_ADDRESS,
    show_default=True,
    help="Where links from other nodes arrive (HOST:PORT, UDP).",
)
@click.option("--rpc-address", help="Where this site's clients reach it (default: next port).")
@click.option("--peer", "peers", multiple=True, help="A node to dial and keep (repeatable).")
@click.option("--network", "network_name", default="trimicro", show_default=True)
@click.option(
    "--resolver",
    type=click.Choice(RESOLVERS),
    default="static",
    show_default=True,
    help="How --peer names become addresses (re-run every minute).",
)
@click.option("--resolver-url", help="For --resolver http: the JSON document's URL.")
@click.option("--token", help="The network's shared secret (default TRIMICRO_NETWORK_TOKEN).")
@click.option("--id", "node_id", help="Node id (default: random).")
@click.option("--announce", type=_SECONDS, default=30.0, help="Seconds between announces.")
@click.option("--prune", type=_SECONDS, default=90.0, help="Seconds before a silent peer goes.")
@click.option("--keepalive", type=_SECONDS, default=30.0, help="Seconds between keepalives.")
@global_options
@pass_globals
def node(
    g: Globals,
    address: str,
    rpc_address: str | None,
    peers: tuple[str, ...],
    network_name: str,
    resolver: str,
    resolver_url: str | None,
    token: str | None,
    node_id: str | None,
    announce: float,
    prune: float,
    keepalive: float,
) -> None:
    """Run a network node: peer with --peer nodes, share routes, proxy calls across sites."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _check_address("--address", address)
    rpc_address = rpc_address or _rpc_address(address)
    _check_address("--rpc-address", rpc_address)
    if resolver == "http" and not resolver_url:
        fail("--resolver http needs --resolver-url", EXIT_INPUT)
    try:
        token = resolve_network_token(token or None)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    options = NetworkOptions(
        network=network_name,
        announce_interval=announce,
        prune_after=prune,
        tunnel=TunnelOptions(keepalive_interval=keepalive, dead_after=2.5 * keepalive),
    )

    async def main() -> None:
        registry_url = resolve_registry(g.registry)
        async with open_registry(registry_url) as registry:
            finder = _resolver(resolver, peers, resolver_url, registry)
            static = list(peers) if resolver == "static" else []
            async with open_network_node(
                registry=registry_url,
                address=address,
                transport=g.transport,
                rpc_address=rpc_address,
                peers=static,
                resolver=finder,
                token=token,
                id=node_id,
                options=options,
                rng=random.Random(),
            ) as running:
                _ready(running)
                await trio.sleep_forever()

    _run_until_signal(main)


def _run_until_signal(main: Callable[[], Awaitable[None]]) -> None:
    async def runner() -> None:
        async with open_owned_nursery() as nursery:  # a start-up failure surfaces unwrapped
            nursery.start_soon(main)
            await first_signal()
            nursery.cancel_scope.cancel()

    _run(runner)


def _ready(node: NetworkNode) -> None:
    click.echo(f"network node {node.id}: links on {node.info.address}", err=True)
    click.echo(f"serving {NETWORK_SERVICE} on {node.rpc_address} ({node.id})", err=True)


def _resolver(kind: str, names: tuple[str, ...], url: str | None, registry: Any) -> Resolver | None:
    if kind == "static":
        return static_resolver(names) if names else None
    if kind == "dns":
        return dns_resolver(names)
    if kind == "http":
        assert url is not None
        return http_resolver(url)
    return registry_resolver(registry, NETWORK_SERVICE)


# -- asking a node ---------------------------------------------------------------------------


async def _ask(g: Globals, address: str | None, endpoint: str, request: Any) -> Any:
    async with open_client(registry=g.registry, transport=g.transport, proxy=g.proxy) as client:
        with trio.fail_after(10):
            return await client.call(NETWORK_SERVICE, endpoint, request, address=address)


def _query(endpoint: str, request: Any, g: Globals, address: str | None) -> Any:
    if address is not None:
        _check_address("--address", address.partition("://")[2] or address)
    return _run(lambda: _ask(g, address, endpoint, request))


def _table(rows: list[dict[str, Any]], columns: list[str], output: str) -> None:
    if output == "json":
        emit_json(rows, "json")
        return
    widths = [max([len(c)] + [len(str(r.get(c.lower(), ""))) for r in rows]) for c in columns]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        cells = [str(row.get(c.lower(), "")) for c in columns]
        click.echo("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip())


_node_option = click.option(
    "--address", help="The node's RPC address (default: TRIMICRO_PROXY, or the registry)."
)


@network.command()
@_node_option
@global_options
@pass_globals
def nodes(g: Globals, address: str | None) -> None:
    """Every node within three hops."""
    _table(_query("Network.Nodes", None, g, address), ["ID", "ADDRESS"], g.output)


@network.command()
@_node_option
@global_options
@pass_globals
def connections(g: Globals, address: str | None) -> None:
    """The node's direct peers."""
    _table(_query("Network.Connections", None, g, address), ["NODE", "ADDRESS"], g.output)


@network.command()
@_node_option
@click.option("--service", default="", help="Only routes to this service.")
@click.option("--route-address", "route_address", default="", help="Only routes to this address.")
@click.option("--gateway", default="", help="Only routes through this gateway.")
@click.option("--router", default="", help="Only routes learned from this router (node id).")
@click.option("--network", "network_name", default="", help="Only routes in this network.")
@global_options
@pass_globals
def routes(
    g: Globals,
    address: str | None,
    service: str,
    route_address: str,
    gateway: str,
    router: str,
    network_name: str,
) -> None:
    """The node's routing table, cheapest first (filters combine; empty matches all)."""
    filters = {"service": service, "address": route_address, "gateway": gateway,
               "router": router, "network": network_name}  # fmt: skip
    rows = _query("Network.Routes", filters, g, address)
    columns = ["SERVICE", "ADDRESS", "GATEWAY", "ROUTER", "NETWORK", "METRIC", "LINK"]
    _table(rows, columns, g.output)


@network.command()
@_node_option
@global_options
@pass_globals
def services(g: Globals, address: str | None) -> None:
    """Services reachable through the network."""
    names = _query("Network.Services", None, g, address)
    if g.output == "json":
        emit_json(names, "json")
    else:
        for name in names:
            click.echo(name)


@network.command()
@_node_option
@click.argument("peers", nargs=-1, required=True)
@global_options
@pass_globals
def connect(g: Globals, address: str | None, peers: tuple[str, ...]) -> None:
    """Have the node dial PEERS (link addresses, host:port) and keep them dialled."""
    for peer in peers:
        _check_address("PEERS", peer)
    reply = _query("Network.Connect", {"nodes": list(peers)}, g, address)
    if g.output == "json":
        emit_json(reply, "json")
    else:
        click.echo(f"dialling {reply['dialling']} peer(s)")


@network.command()
@_node_option
@click.option("--depth", type=click.IntRange(1, 3), default=3, show_default=True)
@global_options
@pass_globals
def graph(g: Globals, address: str | None, depth: int) -> None:
    """The peers graph as nested JSON."""
    emit_json(_query("Network.Graph", {"depth": depth}, g, address), g.output)
