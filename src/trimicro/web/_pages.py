"""The dashboard's HTML, rendered on the server (pure: data in, markup out).

Everything that comes from the registry or a network node — names, versions, addresses,
metadata, schemas — is written through `escape` or `_url`; no value is ever placed in a
script. The pages work without JavaScript; `static/dashboard.js` adds the live services
list and the call forms' in-page replies, and only writes text (`textContent`), never markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from ..registry import Endpoint, ServiceRecord
from ._data import request_template, services_json
from ._graph import graph_svg
from ._network import NetworkView

__all__ = [
    "error_page",
    "network_page",
    "not_connected_page",
    "service_page",
    "service_url",
    "services_page",
]

#: The call form's timeout when the user does not change it (seconds).
DEFAULT_CALL_TIMEOUT = 10


def service_url(name: str) -> str:
    return "/service/" + quote(name, safe="")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _layout(title: str, page: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · trimicro</title>"
        '<link rel="stylesheet" href="/static/dashboard.css">'
        '<script src="/static/dashboard.js" defer></script></head>'
        f'<body data-page="{escape(page)}"><header><a class="brand" href="/">trimicro</a>'
        '<nav><a href="/">services</a><a href="/network">network</a></nav>'
        '<span id="live" data-state="static">static</span></header>'
        f"<main>{body}</main></body></html>\n"
    )


# -- services ------------------------------------------------------------------------------


def _service_item(name: str, versions: Iterable[str]) -> str:
    return (
        f'<li data-name="{escape(name)}"><a href="{escape(service_url(name))}">{escape(name)}</a>'
        f' <span class="versions">{escape(", ".join(versions))}</span></li>'
    )


def services_page(records: Iterable[ServiceRecord]) -> str:
    rows = services_json(records)
    items = "".join(_service_item(row["name"], row["versions"]) for row in rows)
    hidden = " hidden" if rows else ""
    body = (
        "<h1>Services</h1>"
        f'<ul id="services" class="services">{items}</ul>'
        f'<p id="no-services" class="empty"{hidden}>no services registered</p>'
    )
    return _layout("services", "services", body)


# -- one service ---------------------------------------------------------------------------


def _pairs(metadata: Mapping[str, str]) -> str:
    if not metadata:
        return '<span class="empty">none</span>'
    items = "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in sorted(metadata.items())
    )
    return f'<dl class="metadata">{items}</dl>'


def _nodes(record: ServiceRecord) -> str:
    rows = "".join(
        f'<tr data-id="{escape(n.id)}"><td>{escape(n.id)}</td>'
        f'<td class="address">{escape(n.address)}</td><td>{_pairs(n.metadata)}</td></tr>'
        for n in sorted(record.nodes, key=lambda n: n.id)
    )
    return (
        '<table class="nodes"><thead><tr><th>id</th><th>address</th><th>metadata</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _call_form(service: str, endpoint: Endpoint) -> str:
    if endpoint.metadata.get("stream") == "true":
        return (
            '<p class="note">a streaming endpoint: call it with <code>trimicro stream '
            f"{escape(service)} {escape(endpoint.name)}</code></p>"
        )
    return (
        f'<form class="call" method="post" action="/api/call" data-service="{escape(service)}" '
        f'data-endpoint="{escape(endpoint.name)}">'
        '<label>request <textarea name="request" rows="6" spellcheck="false">'
        f"{escape(_pretty(request_template(endpoint.request)))}</textarea></label>"
        '<label>timeout (s) <input name="timeout" type="number" min="0.1" step="any" '
        f'value="{DEFAULT_CALL_TIMEOUT}"></label><button type="submit">call</button></form>'
        '<div class="result" hidden><span class="status"></span><pre class="reply"></pre></div>'
    )


def _endpoint(service: str, published: Endpoint) -> str:
    return (
        f'<article class="endpoint" data-endpoint="{escape(published.name)}">'
        f"<h4>{escape(published.name)}</h4>{_pairs(published.metadata)}"
        '<div class="schemas">'
        f'<div><h5>request</h5><pre class="schema">{escape(_pretty(published.request))}</pre></div>'
        f'<div><h5>response</h5><pre class="schema">{escape(_pretty(published.response))}</pre>'
        f"</div></div>{_call_form(service, published)}</article>"
    )


_NO_ENDPOINTS = '<p class="empty">no endpoints published</p>'


def _version(record: ServiceRecord) -> str:
    published = sorted(record.endpoints, key=lambda e: e.name)
    articles = "".join(_endpoint(record.name, e) for e in published)
    return (
        f'<section class="version" data-version="{escape(record.version)}">'
        f"<h2>version {escape(record.version)}</h2>{_pairs(record.metadata)}"
        f"<h3>nodes</h3>{_nodes(record)}<h3>endpoints</h3>"
        f"{articles or _NO_ENDPOINTS}</section>"
    )


def service_page(name: str, records: list[ServiceRecord]) -> str:
    sections = "".join(_version(r) for r in sorted(records, key=lambda r: r.version))
    body = f'<h1 data-service="{escape(name)}">{escape(name)}</h1>{sections}'
    return _layout(name, "service", body)


# -- network -------------------------------------------------------------------------------


def not_connected_page() -> str:
    body = (
        "<h1>Network</h1>"
        '<p id="network-status" class="empty">not connected to a network node</p>'
        "<p>The dashboard shows the network's nodes, routes and graph when it is given a "
        "network node to ask: <code>trimicro web --network ADDRESS</code> (the node's RPC "
        "address).</p>"
    )
    return _layout("network", "network", body)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...], css: str) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>"
        for row in rows
        if isinstance(row, dict)
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


ROUTE_COLUMNS = ("service", "address", "gateway", "router", "network", "metric", "link")


def network_page(
    view: NetworkView, nodes: list[dict[str, Any]], routes: list[dict[str, Any]], graph: Any
) -> str:
    body = (
        f'<h1>Network</h1><p id="network-status">connected to {escape(view.source)}</p>'
        f"<h2>graph</h2>{graph_svg(graph)}"
        f"<h2>nodes</h2>{_table(nodes, ('id', 'address'), 'network-nodes')}"
        f"<h2>routes</h2>{_table(routes, ROUTE_COLUMNS, 'routes')}"
    )
    return _layout("network", "network", body)


def error_page(status: int, message: str) -> str:
    body = f'<h1>{status}</h1><p class="error">{escape(message)}</p><p><a href="/">services</a></p>'
    return _layout(str(status), "error", body)
