"""The network service's endpoints: `Network.Graph|Nodes|Connections|Routes|Services|Connect`.

The JSON shapes are DESIGN.md §4's (the `trimicro network ...` commands print them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from .._service import Service
from ..rpc import errors
from ._graph import MAX_DEPTH, Topology

if TYPE_CHECKING:
    from ._node import NetworkNode

__all__ = [
    "ConnectRequest",
    "GraphRequest",
    "RouteInfo",
    "RoutesRequest",
    "add_network_endpoints",
]


@attrs.frozen
class GraphRequest:
    depth: int = MAX_DEPTH


@attrs.frozen
class RoutesRequest:
    """Filters; an empty string matches anything."""

    service: str = ""
    address: str = ""
    gateway: str = ""
    router: str = ""
    network: str = ""


@attrs.frozen
class RouteInfo:
    service: str
    address: str
    gateway: str
    router: str
    network: str
    metric: int
    link: str


@attrs.frozen
class ConnectRequest:
    """Link addresses to dial (and keep)."""

    nodes: list[str] = attrs.field(factory=list)


def _graph_json(tree: Topology, network: str) -> dict[str, object]:
    node = {"id": tree.node.id, "address": tree.node.address, "network": network}
    return {"node": node, "peers": [_graph_json(p, network) for p in tree.peers]}


def add_network_endpoints(service: Service, node: NetworkNode) -> None:
    network = node.options.network

    @service.endpoint("Network.Graph", idempotent=True)
    async def graph(req: GraphRequest) -> dict[str, object]:
        if not 0 < req.depth <= MAX_DEPTH:
            req = GraphRequest()  # as go-micro: out of range means the maximum
        return {"root": _graph_json(node.graph.topology(req.depth), network)}

    @service.endpoint("Network.Nodes", idempotent=True)
    async def nodes(req: None) -> list[dict[str, str]]:
        return [{"id": n.id, "address": n.address} for n in node.graph.nodes()]

    @service.endpoint("Network.Connections", idempotent=True)
    async def connections(req: None) -> list[dict[str, str]]:
        return [{"node": n.id, "address": n.address} for n in node.graph.peers()]

    @service.endpoint("Network.Routes", idempotent=True)
    async def routes(req: RoutesRequest) -> list[RouteInfo]:
        filters = {k: v for k, v in attrs.asdict(req).items() if v}
        found = node.routes(**filters)
        return [
            RouteInfo(r.service, r.address, r.gateway, r.router, r.network, r.metric, r.link)
            for r in found
        ]

    @service.endpoint("Network.Services", idempotent=True)
    async def services(req: None) -> list[str]:
        return sorted({r.service for r in node.routes()})

    @service.endpoint("Network.Connect")
    async def connect(req: ConnectRequest) -> dict[str, int]:
        bad = [a for a in req.nodes if not a or any(c.isspace() for c in a)]
        if bad:
            raise errors.bad_request(f"nodes: {bad[0]!r} is not a link address")
        for address in req.nodes:
            node.tunnel.keep_peer(address)
        return {"dialling": len(req.nodes)}
