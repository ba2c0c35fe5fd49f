"""The network's peers graph drawn as SVG (pure: a graph in, markup out).

Radial tree layout: the root in the middle, each depth on its own ring, and each subtree
given a slice of the circle in proportion to its leaves, so branches never cross. A node
seen twice (the graph is a tree of what each peer reported, and peers know each other) is
drawn once, with an edge from every parent that reported it.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import attrs

__all__ = ["MAX_GRAPH_NODES", "graph_svg"]

#: Nodes drawn at most; the rest are counted in the caption.
MAX_GRAPH_NODES = 200

_SIZE = 560
_RADIUS = 14
_MARGIN = 40


@attrs.define(eq=False)
class _Vertex:
    id: str
    address: str
    depth: int
    children: list[_Vertex] = attrs.field(factory=list)
    x: float = 0.0
    y: float = 0.0


def _node_of(entry: Any) -> tuple[str, str] | None:
    node = entry.get("node") if isinstance(entry, dict) else None
    if not isinstance(node, dict) or not isinstance(node.get("id"), str):
        return None
    return node["id"], str(node.get("address", ""))


def _build(root: Any) -> tuple[_Vertex | None, list[tuple[str, str]], int]:
    """Vertices (each id once), every parent → child edge, and how many were left out."""
    first = _node_of(root)
    if first is None:
        return None, [], 0
    top = _Vertex(first[0], first[1], 0)
    seen, edges, dropped = {top.id: top}, [], 0
    queue: list[tuple[_Vertex, Any]] = [(top, root)]
    while queue:
        parent, entry = queue.pop(0)
        peers = entry.get("peers") or []
        for peer in peers if isinstance(peers, list) else []:
            found = _node_of(peer)
            if found is None:
                continue
            if found[0] not in seen:
                if len(seen) >= MAX_GRAPH_NODES:
                    dropped += 1
                    continue
                seen[found[0]] = _Vertex(found[0], found[1], parent.depth + 1)
                parent.children.append(seen[found[0]])
                queue.append((seen[found[0]], peer))
            edges.append((parent.id, found[0]))
    return top, edges, dropped


def _leaves(vertex: _Vertex) -> int:
    return sum(_leaves(c) for c in vertex.children) or 1


def _place(vertex: _Vertex, start: float, span: float, ring: float) -> None:
    middle = start + span / 2
    vertex.x = _SIZE / 2 + vertex.depth * ring * math.cos(middle)
    vertex.y = _SIZE / 2 + vertex.depth * ring * math.sin(middle)
    total = _leaves(vertex)
    for child in vertex.children:
        share = span * _leaves(child) / total
        _place(child, start, share, ring)
        start += share


def _all(vertex: _Vertex) -> list[_Vertex]:
    return [vertex, *(v for c in vertex.children for v in _all(c))]


def _circle(vertex: _Vertex) -> str:
    label = vertex.id if len(vertex.id) <= 14 else vertex.id[:13] + "…"
    kind = "root" if vertex.depth == 0 else "peer"
    return (
        f'<g class="node {kind}" data-id="{escape(vertex.id)}">'
        f"<title>{escape(vertex.id)} {escape(vertex.address)}</title>"
        f'<circle cx="{vertex.x:.1f}" cy="{vertex.y:.1f}" r="{_RADIUS}"/>'
        f'<text x="{vertex.x:.1f}" y="{vertex.y + _RADIUS + 12:.1f}">{escape(label)}</text></g>'
    )


def graph_svg(graph: Any) -> str:
    """An `<svg>` of `{"root": {"node": {...}, "peers": [...]}}` (a note when it is empty)."""
    root, edges, dropped = _build(graph.get("root") if isinstance(graph, dict) else None)
    if root is None:
        return '<p class="empty">the network node reported no graph</p>'
    vertices = {v.id: v for v in _all(root)}
    depth = max(v.depth for v in vertices.values()) or 1
    _place(root, 0.0, 2 * math.pi, (_SIZE / 2 - _MARGIN) / depth)
    lines = [
        f'<line x1="{vertices[a].x:.1f}" y1="{vertices[a].y:.1f}" '
        f'x2="{vertices[b].x:.1f}" y2="{vertices[b].y:.1f}"/>'
        for a, b in edges
    ]
    circles = [_circle(v) for v in vertices.values()]
    caption = f"{len(vertices)} nodes" + (f", {dropped} more not drawn" if dropped else "")
    return (
        f'<svg class="graph" viewBox="0 0 {_SIZE} {_SIZE}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><desc>{caption}</desc>'
        f'<g class="edges">{"".join(lines)}</g>{"".join(circles)}</svg>'
        f'<p class="caption">{caption}</p>'
    )
