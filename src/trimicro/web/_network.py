"""The hook for the network pages.

The dashboard shows a micro network (its nodes, routes and peers graph) only when it is given
a `NetworkView`: something that asks a network node. Without one, `/network` says it is not
connected; nothing is made up. A view answers with the JSON shapes of `trimicro network
nodes|routes|graph --output json` (DESIGN.md §4), so one backed by the network node's
`Network.*` endpoints, or by the CLI's own client, plugs in unchanged:

    async with open_dashboard(network=MyNetworkView(client, "127.0.0.1:8085")) as dashboard:
        ...
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["NetworkView"]


class NetworkView(Protocol):
    """Read-only questions to one network node."""

    #: Shown on the page: which node is asked (an address or a service name).
    source: str

    async def nodes(self) -> list[dict[str, Any]]:
        """`[{"id", "address"}]`: every node of the network the node knows of."""
        ...

    async def routes(self) -> list[dict[str, Any]]:
        """`[{"service", "address", "gateway", "router", "network", "metric", "link"}]`."""
        ...

    async def graph(self) -> dict[str, Any]:
        """`{"root": {"node": {"id", "address", "network"}, "peers": [...]}}`, peers nested
        the same way."""
        ...
