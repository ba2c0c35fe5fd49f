"""The hook for the network pages.

The dashboard shows a micro network (its nodes, routes and peers graph) only when it is given
a `NetworkView`: something that asks a network node. Without one, `/network` says it is not
connected; nothing is made up. A view answers with the JSON shapes of `trimicro network
nodes|routes|graph --output json` (DESIGN.md §4). `NodeView` is the one `trimicro web
--network ADDRESS` uses (it calls the node's `Network.*` endpoints); tests or other sources
plug in any object with the same three methods:

    async with open_dashboard(network_node="127.0.0.1:8086") as dashboard: ...
    async with open_dashboard(network=MyView()) as dashboard: ...
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import trio

from ..codec import JSON as JSON_CODEC
from ..network import NETWORK_SERVICE
from ..rpc import Client, errors

__all__ = ["NetworkView", "NodeView"]


class NetworkView(Protocol):
    """Read-only questions to one network node."""

    @property
    def source(self) -> str:
        """Shown on the page: which node is asked (an address or a service name)."""
        ...

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


@attrs.frozen
class NodeView:
    """A `NetworkView` that asks a network node's `Network.*` endpoints, as `trimicro network
    nodes|routes|graph` do: at `address` (its RPC address), or wherever the registry says
    the network service runs when `address` is None."""

    client: Client
    address: str | None = None
    service: str = NETWORK_SERVICE
    timeout: float = 10.0

    @property
    def source(self) -> str:
        return self.address or self.service

    async def _ask(self, endpoint: str, request: Any = None) -> Any:
        try:
            with trio.fail_after(self.timeout):
                return await self.client.call(self.service, endpoint, request,
                                              address=self.address, codec=JSON_CODEC)  # fmt: skip
        except trio.TooSlowError:
            raise errors.timeout(f"{endpoint}: no reply within {self.timeout:g} s") from None

    async def nodes(self) -> list[dict[str, Any]]:
        return _rows(await self._ask("Network.Nodes"))

    async def routes(self) -> list[dict[str, Any]]:
        return _rows(await self._ask("Network.Routes", {"service": ""}))

    async def graph(self) -> dict[str, Any]:
        graph = await self._ask("Network.Graph", {"depth": 3})
        return graph if isinstance(graph, dict) else {}


def _rows(reply: Any) -> list[dict[str, Any]]:
    return [row for row in reply if isinstance(row, dict)] if isinstance(reply, list) else []
