"""The micro network: nodes that peer over the tunnel, share routes, and proxy calls.

    async with open_network_node(registry="mdns://?domain=a", peers=["10.0.0.2:8085"]) as node:
        ...   # clients with TRIMICRO_PROXY=trimicro.network reach services in every site

Sans-io cores: `_graph.py` (the peers graph), `_messages.py` (the wire), `_adverts.py` (what
crosses a link, loop rejection by path, the link metric). `_node.py` drives them on trio,
`_resolver.py` finds peers, `_service.py` answers `Network.*`. docs/network.md has the rest.
"""

from ._graph import NodeInfo as NodeInfo
from ._graph import PeerGraph as PeerGraph
from ._graph import Topology as Topology
from ._node import DEFAULT_NETWORK as DEFAULT_NETWORK
from ._node import NETWORK_SERVICE as NETWORK_SERVICE
from ._node import NetworkNode as NetworkNode
from ._node import NetworkOptions as NetworkOptions
from ._node import open_network_node as open_network_node
from ._resolver import ResolveError as ResolveError
from ._resolver import Resolver as Resolver
from ._resolver import dns_resolver as dns_resolver
from ._resolver import http_resolver as http_resolver
from ._resolver import registry_resolver as registry_resolver
from ._resolver import static_resolver as static_resolver

__all__ = [
    "DEFAULT_NETWORK",
    "NETWORK_SERVICE",
    "NetworkNode",
    "NetworkOptions",
    "NodeInfo",
    "PeerGraph",
    "ResolveError",
    "Resolver",
    "Topology",
    "dns_resolver",
    "http_resolver",
    "open_network_node",
    "registry_resolver",
    "static_resolver",
]
