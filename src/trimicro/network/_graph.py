"""The peers graph (sans-io): who our peers are, and theirs, to a depth of three.

Each node announces its topology (itself, its peers, theirs) every `ANNOUNCE_INTERVAL`; a peer
keeps the announcer at level 1, the announcer's peers at level 2 and theirs at level 3, all
stamped with the time of the announce. A direct peer not heard from for `PRUNE_AFTER` is
pruned with everything it brought. Fed announces and `now`; no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import attrs

__all__ = ["ANNOUNCE_INTERVAL", "MAX_DEPTH", "PRUNE_AFTER", "NodeInfo", "PeerGraph", "Topology"]

MAX_DEPTH = 3
ANNOUNCE_INTERVAL = 30.0
PRUNE_AFTER = 90.0
#: Peers kept per level: a node that announces thousands of peers is cut, not trusted.
MAX_PEERS_PER_NODE = 64


@attrs.frozen
class NodeInfo:
    """A network node: its id (also its router id and tunnel channel) and link address."""

    id: str
    address: str = ""


@attrs.frozen
class Topology:
    """A node and its peers, nested: what an announce carries."""

    node: NodeInfo
    peers: tuple[Topology, ...] = ()

    def truncated(self, depth: int) -> Topology:
        """This tree cut to `depth` levels (1: the node alone)."""
        if depth <= 1:
            return Topology(self.node)
        return Topology(self.node, tuple(p.truncated(depth - 1) for p in self.peers))

    def walk(self) -> Iterator[tuple[int, NodeInfo]]:
        """(level, node) breadth first, the root at level 0."""
        queue: deque[tuple[int, Topology]] = deque([(0, self)])
        while queue:
            level, tree = queue.popleft()
            yield level, tree.node
            queue.extend((level + 1, p) for p in tree.peers)


@attrs.define
class _Peer:
    tree: Topology
    last_seen: float


class PeerGraph:
    """Our direct peers and what they told us of theirs."""

    def __init__(
        self, node: NodeInfo, *, max_depth: int = MAX_DEPTH, prune_after: float = PRUNE_AFTER
    ) -> None:
        self.node = node
        self.max_depth = max_depth
        self.prune_after = prune_after
        self._peers: dict[str, _Peer] = {}

    def update(self, announce: Topology, now: float) -> bool:
        """A direct peer announced its topology; True when it is a new peer."""
        if announce.node.id == self.node.id:
            return False
        tree = _capped(announce).truncated(self.max_depth)
        new = announce.node.id not in self._peers
        self._peers[announce.node.id] = _Peer(tree, now)
        return new

    def remove(self, node_id: str) -> bool:
        """A peer closed or its link died; True when it was a peer."""
        return self._peers.pop(node_id, None) is not None

    def prune(self, now: float) -> list[str]:
        """Drop peers silent for `prune_after`; their ids."""
        stale = [i for i, p in self._peers.items() if now - p.last_seen >= self.prune_after]
        for node_id in stale:
            del self._peers[node_id]
        return stale

    def peers(self) -> list[NodeInfo]:
        """Direct peers, by id."""
        return [self._peers[i].tree.node for i in sorted(self._peers)]

    def is_peer(self, node_id: str) -> bool:
        return node_id in self._peers

    def topology(self, depth: int | None = None) -> Topology:
        """Us at the root, then `depth` levels of peers (default and at most the max)."""
        depth = self.max_depth if depth is None or not 0 < depth <= self.max_depth else depth
        peers = tuple(self._peers[i].tree for i in sorted(self._peers))
        return Topology(self.node, peers).truncated(depth + 1)

    def nodes(self) -> list[NodeInfo]:
        """Every node within the depth, us first, each once (breadth first)."""
        seen: dict[str, NodeInfo] = {}
        for _level, node in self.topology().walk():
            seen.setdefault(node.id, node)
        return list(seen.values())


def _capped(tree: Topology) -> Topology:
    return Topology(tree.node, tuple(_capped(p) for p in tree.peers[:MAX_PEERS_PER_NODE]))
