"""The `api` handler: api.Request in, api.Response out; the seed's greeter flow."""

from __future__ import annotations

import json

import attrs

import trimicro
from examples.greeter import service as greeter
from examples.greeter_api import service as greeter_api
from trimicro.gateway import api

from .conftest import http_client, running_gateway


def make_echo() -> trimicro.Service:
    service = trimicro.Service("trimicro.api.echo")

    @service.endpoint("Echo.Call")
    async def call(req: api.Request) -> api.Response:
        header = api.pairs([("X-Echo-Method", req.method), ("Set-Cookie", "a=1"),
                            ("Set-Cookie", "b=2"), ("Connection", "close")])  # fmt: skip
        return api.Response(201, header, json.dumps(attrs.asdict(req)))

    @service.endpoint("Echo.Default")
    async def default(req: api.Request) -> dict[str, str]:
        return {"body": "no status given"}

    @service.endpoint("Echo.Broken")
    async def broken(req: api.Request) -> str:
        return "not an api.Response"

    return service


async def test_seed_flow_get_greeter_say_hello() -> None:
    async with (
        running_gateway(greeter, greeter_api, handler="api", namespace="trimicro.api") as (gw, _),
        http_client(gw) as http,
    ):
        response = await http.get("/greeter/say/hello", params={"name": "John"})
        missing = await http.get("/greeter/say/hello")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "Hello John"}
    assert missing.status_code == 400
    assert missing.json()["id"] == "trimicro.api.greeter"


async def test_api_request_and_response_round_trip_headers_and_bodies() -> None:
    async with (
        running_gateway(make_echo(), handler="api", namespace="trimicro.api") as (gateway, _),
        http_client(gateway) as http,
    ):
        response = await http.put(
            "/echo/call?x=1&x=2&y=",
            content=b'{"hello": "world"}',
            headers={"Content-Type": "application/json", "X-Trace": "abc"},
        )
        form = await http.post("/echo/call", data={"name": "Ann", "tags": ["a", "b"]})
    assert response.status_code == 201
    assert response.headers["x-echo-method"] == "PUT"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers.get("connection") != "close"  # hop-by-hop headers stay behind
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["path"] == "/echo/call"
    assert seen["get"] == {
        "x": {"key": "x", "values": ["1", "2"]},
        "y": {"key": "y", "values": [""]},
    }
    assert seen["header"]["X-Trace"] == {"key": "X-Trace", "values": ["abc"]}
    assert seen["header"]["Content-Type"]["values"] == ["application/json"]
    assert seen["body"] == '{"hello": "world"}'
    assert seen["post"] == {}
    assert seen["url"] == f"http://{gateway.address}/echo/call?x=1&x=2&y="
    posted = form.json()
    assert posted["post"] == {
        "name": {"key": "name", "values": ["Ann"]},
        "tags": {"key": "tags", "values": ["a", "b"]},
    }
    assert posted["body"] == ""


async def test_api_handler_edges() -> None:
    async with (
        running_gateway(make_echo(), handler="api", namespace="trimicro.api") as (gateway, _),
        http_client(gateway) as http,
    ):
        default = await http.get("/echo/default")
        broken = await http.get("/echo/broken")
        binary = await http.post("/echo/call", content=b"\xff\xfe")
        unknown = await http.get("/nobody/call")
        ws_refused = await http.get("/rpc")
    assert default.status_code == 200  # status_code 0 means 200, as in go-micro
    assert default.text == "no status given"
    assert broken.status_code == 502
    assert "no api.Response" in broken.json()["detail"]
    assert binary.status_code == 400
    assert unknown.status_code == 404
    assert ws_refused.status_code == 405


def test_api_request_helpers() -> None:
    request = api.Request(
        get=api.pairs([("name", "Ann")]),
        post=api.pairs([("age", "3")]),
        header=api.pairs([("X-Id", "7")]),
        body='{"a": 1}',
    )
    assert request.query("name") == "Ann"
    assert request.query("none", "d") == "d"
    assert request.form("age") == "3"
    assert request.header_value("x-id") == "7"
    assert request.json() == {"a": 1}
    response = api.Response.json({"ok": True}, status_code=202)
    assert response.status_code == 202
    assert response.header["Content-Type"].values == ["application/json"]
