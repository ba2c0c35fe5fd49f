"""The network's sans-io cores: the peers graph, the messages, what crosses a link."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.network._adverts import RoutePaths, Stamps, accept, link_metric, outgoing
from trimicro.network._graph import NodeInfo, PeerGraph, Topology
from trimicro.network._messages import (
    AdvertMessage,
    Close,
    Connect,
    MalformedMessage,
    PeerAnnounce,
    decode,
    encode,
)
from trimicro.routing import Advert, AdvertType, EventType, Route, RouteEvent

SRC = Path(__file__).resolve().parents[2] / "src" / "trimicro" / "network"


@pytest.mark.parametrize("module", ["_graph.py", "_messages.py", "_adverts.py"])
def test_the_cores_import_no_io(module: str) -> None:
    tree = ast.parse((SRC / module).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}  # fmt: skip
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}  # fmt: skip
    assert not names & {"trio", "socket", "time", "random", "asyncio", "threading"}


def _tree(node: str, *peers: Topology) -> Topology:
    return Topology(NodeInfo(node, f"{node}:1"), peers)


def test_the_graph_keeps_three_levels_and_prunes_silent_peers() -> None:
    graph = PeerGraph(NodeInfo("a", "a:1"), prune_after=90)
    deep = _tree("b", _tree("c", _tree("d", _tree("e"))))
    assert graph.update(deep, now=0.0) is True
    assert graph.update(deep, now=10.0) is False  # known: refreshed
    assert [n.id for n in graph.nodes()] == ["a", "b", "c", "d"]  # e is 4 hops away
    assert graph.update(_tree("x"), now=50.0)
    assert graph.prune(now=99.0) == []
    assert graph.prune(now=100.0) == ["b"]  # silent since 10 s
    assert [n.id for n in graph.peers()] == ["x"]
    assert graph.update(_tree("a"), now=101.0) is False  # ourselves: ignored


def test_topology_depth_is_cut_and_out_of_range_means_the_maximum() -> None:
    graph = PeerGraph(NodeInfo("a", "a:1"))
    graph.update(_tree("b", _tree("c")), now=0.0)
    assert graph.topology(1).peers == (_tree("b"),)
    assert graph.topology(2).peers == (_tree("b", _tree("c")),)
    assert graph.topology(99) == graph.topology(3)


def _route(service: str = "s", router: str = "o", gateway: str = "", metric: int = 1) -> Route:
    return Route(service, "10.0.0.1:1", gateway, "trimicro", router, "local", metric)


def _advert(*events: RouteEvent, sender: str = "b") -> Advert:
    return Advert(sender, AdvertType.UPDATE, 1.0, 300.0, events)


def test_relayed_routes_carry_us_as_gateway_and_their_path() -> None:
    paths = RoutePaths()
    own = RouteEvent(EventType.CREATE, _route(router="me"), 1.0)
    learned = RouteEvent(EventType.CREATE, _route(router="o", gateway="b", metric=7), 1.0)
    paths.learn(learned.route, 1.0, ("o", "b"))
    message = outgoing(_advert(own, learned, sender="me"), "me", paths, stamps=Stamps())
    assert message is not None
    assert [e.route.gateway for e in message.advert.events] == ["me", "me"]
    assert [e.route.metric for e in message.advert.events] == [1, 7]
    assert message.paths == (("me",), ("o", "b", "me"))
    stamps = [e.timestamp for e in message.advert.events]
    assert stamps[0] < stamps[1]  # same instant, still strictly ordered


def test_a_route_we_cannot_vouch_for_is_not_relayed_and_a_routed_withdrawal_is_held() -> None:
    unknown = RouteEvent(EventType.CREATE, _route(router="o", gateway="b"), 1.0)
    gone = RouteEvent(EventType.DELETE, _route(router="o", gateway="b"), 1.0)
    assert outgoing(_advert(unknown), "me", RoutePaths()) is None
    held = outgoing(_advert(gone), "me", RoutePaths(), still_routed=lambda r: True)
    assert held is None  # we still reach that instance another way
    sent = outgoing(_advert(gone), "me", RoutePaths())
    assert sent is not None and sent.advert.events[0].type is EventType.DELETE


def test_accepting_adds_the_link_cost_and_a_looping_update_withdraws() -> None:
    paths = RoutePaths()
    event = RouteEvent(EventType.UPDATE, _route(gateway="b", metric=5), 2.0)
    message = AdvertMessage("b", _advert(event), (("o", "b"),))
    advert, looped = accept(message, "me", cost=3, paths=paths)
    (kept,) = advert.events
    assert (kept.route.metric, kept.route.gateway, kept.route.link) == (8, "b", "network")
    assert paths.get(kept.route) == ("o", "b")
    through_us = AdvertMessage("b", _advert(event), (("o", "me", "b"),))
    advert, looped = accept(through_us, "me", cost=3, paths=paths)
    assert looped == 1 and [e.type for e in advert.events] == [EventType.DELETE]


def test_link_metric_is_go_micros_formula_for_a_direct_peer() -> None:
    assert link_metric(0.001, 0.0) == 1  # 1 ms
    assert link_metric(0.010, 0.0) == 10
    assert link_metric(0.010, 0.003) == 30  # 3 ms of queue
    assert link_metric(None, 0.0) == 10_000  # unmeasured


@pytest.mark.parametrize(
    "message",
    [
        Connect(NodeInfo("a", "1.2.3.4:8085")),
        Close(NodeInfo("a")),
        PeerAnnounce(_tree("a", _tree("b"))),
        AdvertMessage(
            "a", _advert(RouteEvent(EventType.CREATE, _route(), 1.0), sender="a"), (("a",),)
        ),
    ],
)
def test_messages_round_trip(message: object) -> None:
    assert decode(encode(message)) == message  # type: ignore[arg-type]


@given(st.binary(max_size=256))
def test_any_bytes_decode_to_a_message_or_a_malformed_error(data: bytes) -> None:
    try:
        decode(data)
    except MalformedMessage:
        pass


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_cbor_body_decodes_or_is_malformed(body: object) -> None:
    from trimicro.codec import cbor_dumps

    for kind in ("connect", "peer", "close", "advert"):
        try:
            decode(cbor_dumps({"v": 1, "t": kind, "body": body}))
        except MalformedMessage:
            pass
