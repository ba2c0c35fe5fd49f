"""Advertising strategies: which of our routes we tell other routers about.

- `ALL`: every route in the table.
- `BEST`: per service and network, the route with the lowest metric; on a tie our own route
  wins, then the smallest identity (so every router picks the same one).
- `LOCAL`: only the routes we created from our own registry, collapsed as for `BEST`.
- `NONE`: nothing.

go-micro's `LOCAL` keeps routes whose link is `"local"`. Ours also requires that we created
them: routes learned from a router that shares no network layer still say `"local"`, and
passing them on would echo other routers' routes around the mesh.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ._route import DEFAULT_LINK, Route

__all__ = ["Strategy", "admits_event", "advertised_routes", "best_routes", "collapses"]


class Strategy(enum.IntEnum):
    """go-micro's values (`router.Strategy`)."""

    ALL = 0
    BEST = 1
    LOCAL = 2
    NONE = 3


def _preference(route: Route, own_id: str) -> tuple[int, bool, tuple[str, ...]]:
    return (route.metric, route.router != own_id, route.key)


def best_routes(routes: Iterable[Route], own_id: str = "") -> list[Route]:
    """One route per (service, network): the lowest metric, our own on a tie; sorted by metric."""
    best: dict[tuple[str, str], Route] = {}
    for route in routes:
        group = (route.service, route.network)
        held = best.get(group)
        if held is None or _preference(route, own_id) < _preference(held, own_id):
            best[group] = route
    return sorted(best.values(), key=lambda route: _preference(route, own_id))


def _is_own_local(route: Route, own_id: str) -> bool:
    return route.link == DEFAULT_LINK and route.router == own_id


def advertised_routes(strategy: Strategy, routes: Iterable[Route], own_id: str) -> list[Route]:
    """The routes a full-table advert carries under `strategy`."""
    if strategy is Strategy.ALL:
        return list(routes)
    if strategy is Strategy.BEST:
        return best_routes(routes, own_id)
    if strategy is Strategy.LOCAL:
        return best_routes((r for r in routes if _is_own_local(r, own_id)), own_id)
    return []


def admits_event(strategy: Strategy, route: Route, own_id: str) -> bool:
    """Whether a change to `route` is advertised at all (before flap damping)."""
    if strategy is Strategy.NONE:
        return False
    return strategy is not Strategy.LOCAL or _is_own_local(route, own_id)


def collapses(strategy: Strategy) -> bool:
    """Whether the strategy advertises one route per (service, network) rather than all."""
    return strategy in (Strategy.BEST, Strategy.LOCAL)
