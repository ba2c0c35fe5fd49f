"""A route: how to reach one address of a service, and what it costs.

A route's identity is everything but its metric: the same service at the same address through
the same gateway, network, router and link is one route whose cost may change. `Route.hash` is
that identity as go-micro computes it (FNV-1 64 of the fields concatenated), so ids match the
original's; the table keys routes by `Route.key`, the fields themselves, because the plain
concatenation is ambiguous ("ab" + "c" and "a" + "bc" hash alike).
"""

from __future__ import annotations

import functools

import attrs

__all__ = [
    "DEFAULT_LINK",
    "GATEWAY_METRIC",
    "LOCAL_METRIC",
    "MAX_METRIC",
    "Route",
    "RouteKey",
    "fnv1_64",
]

#: The link of routes to services in our own registry.
DEFAULT_LINK = "local"
#: Metric of a route to a service in our own registry, and of one reached through our gateway.
LOCAL_METRIC = 1
GATEWAY_METRIC = 2
#: Unreachable (go-micro's MaxInt64); metrics are int64 on the wire.
MAX_METRIC = 2**63 - 1

RouteKey = tuple[str, str, str, str, str, str]

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 2**64 - 1


def fnv1_64(data: bytes) -> int:
    """FNV-1 (not 1a) 64-bit, as Go's `hash/fnv.New64`."""
    value = _FNV64_OFFSET
    for byte in data:
        value = ((value * _FNV64_PRIME) & _MASK64) ^ byte
    return value


@attrs.frozen
class Route:
    """A way to reach `service` at `address`, optionally through `gateway`, costing `metric`.

    `router` is the id of the router that created the route, `network` the network it
    belongs to, and `link` how to reach it (`"local"`, or the network layer's link name).
    """

    service: str
    address: str
    gateway: str = ""
    network: str = ""
    router: str = ""
    link: str = DEFAULT_LINK
    metric: int = LOCAL_METRIC

    @property
    def key(self) -> RouteKey:
        """The identity: every field but the metric."""
        return (self.service, self.address, self.gateway, self.network, self.router, self.link)

    @functools.cached_property
    def hash(self) -> int:
        """go-micro's route hash (FNV-1 64 of the identity fields, concatenated); computed once."""
        return fnv1_64("".join(self.key).encode())
