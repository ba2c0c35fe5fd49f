"""The registry's data model: services, versions, nodes and endpoints.

A `ServiceRecord` is one *version* of a service with the nodes that serve it, as in go-micro:
registering a record adds its nodes to that (name, version); deregistering removes them, and a
version with no nodes left disappears.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs

__all__ = ["Endpoint", "Node", "ServiceRecord", "WatchAction", "WatchEvent"]

WatchAction = Literal["create", "update", "delete"]


def _frozen_dict(value: Any) -> dict[str, str]:
    return dict(value or {})


def _endpoints(value: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    return tuple(value)


def _nodes(value: Iterable[Node]) -> tuple[Node, ...]:
    return tuple(value)


@attrs.frozen
class Node:
    """A process serving a service version, reachable at `address` via `metadata["transport"]`."""

    id: str
    address: str
    metadata: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen
class Endpoint:
    """A callable endpoint; `request`/`response` are JSON-Schema descriptions (or None)."""

    name: str
    request: Any = None
    response: Any = None
    metadata: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen
class ServiceRecord:
    """One version of a service and the nodes serving it."""

    name: str
    version: str = "latest"
    metadata: dict[str, str] = attrs.field(factory=dict, converter=_frozen_dict)
    endpoints: tuple[Endpoint, ...] = attrs.field(default=(), converter=_endpoints)
    nodes: tuple[Node, ...] = attrs.field(default=(), converter=_nodes)


@attrs.frozen
class WatchEvent:
    """A change to one (name, version): the record after it (for delete, the one removed)."""

    action: WatchAction
    service: ServiceRecord
