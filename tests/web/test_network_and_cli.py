"""The network pages through the `NetworkView` hook, the graph's SVG, and `trimicro web`."""

from __future__ import annotations

from typing import Any

import attrs
from click.testing import CliRunner

from trimicro.cli import cli
from trimicro.network import open_network_node
from trimicro.web import NodeView
from trimicro.web._graph import MAX_GRAPH_NODES, graph_svg

from .conftest import XSS, http_client, make_greeter, running_dashboard


def _entry(node_id: str, *peers: dict[str, Any]) -> dict[str, Any]:
    return {"node": {"id": node_id, "address": f"{node_id}:8085", "network": "n"},
            "peers": list(peers)}  # fmt: skip


@attrs.frozen
class StubView:
    """A network node's answers, as a `NetworkView` backed by a real node would give."""

    source: str = "127.0.0.1:8085"

    async def nodes(self) -> list[dict[str, Any]]:
        return [{"id": "a", "address": "a:8085"}, {"id": XSS, "address": "b:8085"}]

    async def routes(self) -> list[dict[str, Any]]:
        return [{"service": "greeter", "address": "10.0.0.1:9000", "gateway": "",
                 "router": "a", "network": "n", "metric": 1, "link": "local"}]  # fmt: skip

    async def graph(self) -> dict[str, Any]:
        return {"root": _entry("a", _entry(XSS, _entry("c")), _entry("d"))}


async def test_network_pages_show_what_the_node_reports() -> None:
    async with running_dashboard(network=StubView()) as site:
        async with http_client(site) as http:
            page = await http.get("/network")
    assert page.status_code == 200
    assert "connected to 127.0.0.1:8085" in page.text
    assert "not connected" not in page.text
    assert "<td>10.0.0.1:9000</td>" in page.text
    assert '<svg class="graph"' in page.text
    assert XSS not in page.text


def test_graph_draws_each_node_once_with_every_edge() -> None:
    svg = graph_svg({"root": _entry("a", _entry("b", _entry("a"), _entry("c")), _entry("c"))})
    assert svg.count("<circle") == 3  # a, b, c
    assert svg.count("<line") == 4  # a-b, b-a, b-c, a-c
    assert 'data-id="a"' in svg and "3 nodes" in svg


def test_graph_escapes_names_and_caps_its_size() -> None:
    svg = graph_svg({"root": _entry(XSS)})
    assert XSS not in svg and "&lt;img" in svg
    many = graph_svg({"root": _entry("r", *(_entry(f"p{i}") for i in range(MAX_GRAPH_NODES)))})
    assert many.count("<circle") == MAX_GRAPH_NODES and "1 more not drawn" in many
    assert "no graph" in graph_svg({"root": {"peers": []}})
    assert "no graph" in graph_svg("nonsense")


def test_bad_address_is_a_one_line_usage_error() -> None:
    for address in ("nonsense", "127.0.0.1:99999", "[::1:8082", "a b:80"):
        result = CliRunner().invoke(cli, ["web", "--address", address])
        assert result.exit_code == 2, (address, result.output)
        assert result.output.strip() == f"trimicro: --address {address!r} is not HOST:PORT"
        assert result.exception is None or isinstance(result.exception, SystemExit)


async def test_network_pages_from_a_real_network_node() -> None:
    async with running_dashboard(make_greeter()) as site:
        node = await site.stack.enter_async_context(
            open_network_node(registry=site.registry, address="127.0.0.1:0",
                              transport="tcp://", rpc_address="127.0.0.1:0")
        )  # fmt: skip
        view = NodeView(site.dashboard.app.client, node.rpc_address)
        site.dashboard.app.network = view
        async with http_client(site) as http:
            page = await http.get("/network")
        nodes = await view.nodes()
    assert page.status_code == 200, page.text
    assert f"connected to {node.rpc_address}" in page.text
    assert f'data-id="{node.id}"' in page.text  # the root of the graph
    assert [n["id"] for n in nodes] == [node.id]
    assert f"<td>{node.id}</td>" in page.text


async def test_an_unreachable_network_node_is_a_502_page() -> None:
    async with running_dashboard() as site:
        site.dashboard.app.network = NodeView(site.dashboard.app.client, "127.0.0.1:1")
        async with http_client(site) as http:
            page = await http.get("/network")
    assert page.status_code == 502
    assert "network node 127.0.0.1:1" in page.text
