"""Outlier ejection (blacklisting done right): a node that keeps failing is skipped for a while.

A node is ejected after `connect_errors` consecutive connection-level failures or
`server_errors` consecutive 5xx answers, for `base_ejection` seconds, doubling each time it is
ejected again. A success clears its record. Never more than `max_share` of a service's nodes
(at least one) are ejected at once, so a bad deploy cannot make the client eject everything.
Ejected nodes are tried last rather than never: if nothing else works, they still get a call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import attrs

from ..registry import Node

__all__ = ["FailureKind", "OutlierDetector"]

FailureKind = Literal["connect", "server"]


@attrs.define
class _Health:
    connect_errors: int = 0
    server_errors: int = 0
    ejections: int = 0
    ejected_until: float = -math.inf


@attrs.define
class OutlierDetector:
    """Tracks consecutive failures per node id, on the caller's clock (`now`)."""

    connect_errors: int = 3
    server_errors: int = 5
    base_ejection: float = 30.0
    max_ejection: float = 300.0
    max_share: float = 0.10
    _health: dict[str, _Health] = attrs.field(factory=dict)

    def record_success(self, node_id: str) -> None:
        self._health.pop(node_id, None)

    def record_failure(
        self, node_id: str, kind: FailureKind, now: float, peers: Sequence[str]
    ) -> None:
        """Count a failure; eject the node when it crosses its threshold and the share allows.

        `peers` are the ids of the service's nodes (for the share limit).
        """
        health = self._health.setdefault(node_id, _Health())
        if kind == "connect":
            health.connect_errors += 1
        else:
            health.server_errors += 1
        tripped = (
            health.connect_errors >= self.connect_errors
            or health.server_errors >= self.server_errors
        )
        if tripped and not self.is_ejected(node_id, now) and self._room(now, peers):
            duration = min(self.max_ejection, self.base_ejection * 2**health.ejections)
            health.ejected_until = now + duration
            health.ejections += 1
            health.connect_errors = health.server_errors = 0

    def _room(self, now: float, peers: Sequence[str]) -> bool:
        limit = max(1, math.floor(self.max_share * len(peers)))
        return sum(self.is_ejected(p, now) for p in peers) < limit

    def is_ejected(self, node_id: str, now: float) -> bool:
        health = self._health.get(node_id)
        return health is not None and now < health.ejected_until

    def ejected_until(self, node_id: str) -> float:
        health = self._health.get(node_id)
        return health.ejected_until if health else -math.inf

    def ejected_count(self, now: float) -> int:
        return sum(now < h.ejected_until for h in self._health.values())

    def demote(self, nodes: list[Node], now: float) -> list[Node]:
        """The same nodes, ejected ones last."""
        return sorted(nodes, key=lambda n: self.is_ejected(n.id, now))
