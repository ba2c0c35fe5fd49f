"""Choosing a node: filters, then a strategy, over a cached view of the registry.

A selector turns a service's records into an *order* of nodes to try: the first is the
choice, the rest are where retries go. Filters narrow the candidates (metadata, version,
endpoint, labels, canary splits); the strategy orders them (random, round-robin across calls,
least in flight). Ejected nodes (see `_outlier.py`) go last rather than vanish, so a service
whose every node misbehaves is still tried.

Example::

    client = Client(..., selector=Selector("round_robin", filters=[version_split({"1.0.0": 90,
                                                                             "1.1.0": 10})]))
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence

import attrs

from ..registry import Node, ServiceRecord
from ._outlier import OutlierDetector

__all__ = [
    "Candidate",
    "Filter",
    "Selection",
    "Selector",
    "by_endpoint",
    "by_label",
    "by_metadata",
    "by_version",
    "pin_version",
    "version_split",
]


@attrs.frozen
class Candidate:
    """A node together with the version record it serves."""

    node: Node
    record: ServiceRecord


@attrs.frozen
class Selection:
    """What a filter may look at: the call being placed and the client's random source."""

    service: str
    endpoint: str
    metadata: Mapping[str, str]
    rng: random.Random


Filter = Callable[[list[Candidate], Selection], list[Candidate]]


def candidates_of(records: Sequence[ServiceRecord]) -> list[Candidate]:
    return [Candidate(node, record) for record in records for node in record.nodes]


# -- filters ---------------------------------------------------------------------------------


def by_metadata(key: str, value: str) -> Filter:
    """Nodes whose node (or service) metadata has `key` = `value`."""

    def keep(cands: list[Candidate], _: Selection) -> list[Candidate]:
        return [
            c for c in cands if (c.node.metadata.get(key) or c.record.metadata.get(key)) == value
        ]

    return keep


def by_label(label: str, value: str) -> Filter:
    """A label such as `datacenter`: the same as `by_metadata`, named for intent."""
    return by_metadata(label, value)


def by_version(*versions: str) -> Filter:
    """Nodes serving one of `versions`."""

    def keep(cands: list[Candidate], _: Selection) -> list[Candidate]:
        return [c for c in cands if c.record.version in versions]

    return keep


def by_endpoint() -> Filter:
    """Nodes whose record lists the endpoint being called."""

    def keep(cands: list[Candidate], selection: Selection) -> list[Candidate]:
        return [c for c in cands if any(e.name == selection.endpoint for e in c.record.endpoints)]

    return keep


def version_split(weights: Mapping[str, float]) -> Filter:
    """Canary: send each call to one version, chosen by weight (`{"1.0.0": 90, "1.1.0": 10}`).

    Versions without live nodes drop out and the others share their weight.
    """
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"version_split needs positive weights, got {dict(weights)!r}")

    def keep(cands: list[Candidate], selection: Selection) -> list[Candidate]:
        live = {c.record.version for c in cands}
        choices = [(v, w) for v, w in weights.items() if v in live and w > 0]
        if not choices:
            return cands
        versions, ws = zip(*choices, strict=True)
        chosen = selection.rng.choices(versions, weights=ws)[0]
        return [c for c in cands if c.record.version == chosen]

    return keep


def pin_version(key: str = "X-Version") -> Filter:
    """Route by request metadata: a call carrying `key: 1.1.0` goes to version 1.1.0 only."""

    def keep(cands: list[Candidate], selection: Selection) -> list[Candidate]:
        wanted = _header(selection.metadata, key)
        return cands if wanted is None else [c for c in cands if c.record.version == wanted]

    return keep


def _header(metadata: Mapping[str, str], key: str) -> str | None:
    lowered = key.lower()
    return next((v for k, v in metadata.items() if k.lower() == lowered), None)


# -- strategies ------------------------------------------------------------------------------

STRATEGIES = ("random", "round_robin", "least_in_flight")


class Selector:
    """Orders the nodes to try for one call."""

    def __init__(
        self,
        strategy: str = "random",
        *,
        filters: Sequence[Filter] = (),
        outliers: OutlierDetector | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"selector strategy {strategy!r}: expected one of {STRATEGIES}")
        self.strategy = strategy
        self.filters = list(filters)
        self.outliers = outliers or OutlierDetector()
        self._turns: dict[str, itertools.count[int]] = {}
        self.in_flight: dict[str, int] = {}

    def order(self, candidates: list[Candidate], selection: Selection, now: float) -> list[Node]:
        for keep in self.filters:
            candidates = keep(candidates, selection)
        nodes = self._arrange([c.node for c in candidates], selection)
        return self.outliers.demote(nodes, now)

    def _arrange(self, nodes: list[Node], selection: Selection) -> list[Node]:
        if self.strategy == "round_robin":
            nodes.sort(key=lambda n: n.id)  # a stable ring, whatever order the registry gives
            turn = next(self._turns.setdefault(selection.service, itertools.count()))
            start = turn % len(nodes) if nodes else 0
            return nodes[start:] + nodes[:start]
        selection.rng.shuffle(nodes)
        if self.strategy == "least_in_flight":
            nodes.sort(key=lambda n: self.in_flight.get(n.id, 0))  # stable: ties stay shuffled
        return nodes
