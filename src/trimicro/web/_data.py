"""The dashboard's JSON: the shapes `trimicro services` and `trimicro service NAME` print
(DESIGN.md §4), plus each endpoint's request template for the call form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..codec import template_of
from ..registry import Endpoint, Node, ServiceRecord

__all__ = ["endpoint_json", "record_json", "request_template", "services_json"]


def services_json(records: Iterable[ServiceRecord]) -> list[dict[str, Any]]:
    """`[{"name", "versions"}]`, by name, each version once."""
    versions: dict[str, set[str]] = {}
    for record in records:
        versions.setdefault(record.name, set()).add(record.version)
    return [{"name": name, "versions": sorted(v)} for name, v in sorted(versions.items())]


def request_template(schema: Any) -> Any:
    """The call form's starting request. Schemas come from the registry, written by anyone:
    one that `template_of` cannot follow gives an empty object rather than an error page."""
    try:
        template = template_of(schema)
    except (AttributeError, TypeError, RecursionError):
        return {}
    return {} if template is None else template


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "request": endpoint.request,
        "response": endpoint.response,
        "metadata": dict(endpoint.metadata),
        "template": request_template(endpoint.request),
    }


def _node_json(node: Node) -> dict[str, Any]:
    return {"id": node.id, "address": node.address, "metadata": dict(node.metadata)}


def record_json(record: ServiceRecord) -> dict[str, Any]:
    """One version of a service: `{"name", "version", "metadata", "endpoints", "nodes"}`."""
    return {
        "name": record.name,
        "version": record.version,
        "metadata": dict(record.metadata),
        "endpoints": [endpoint_json(e) for e in sorted(record.endpoints, key=lambda e: e.name)],
        "nodes": [_node_json(n) for n in sorted(record.nodes, key=lambda n: n.id)],
    }
