"""Calls → HTTP requests to the app, and HTTP answers → replies or errors (no network: an
httpx mock transport plays the app)."""

from __future__ import annotations

import json

import httpx
import pytest

from trimicro import errors
from trimicro.sidecar import AppEndpoint, AppProxy, app_url, endpoint_path, parse_endpoint


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        ("Say.Hello", "/say/hello"),
        ("Greeter.SayHello", "/greeter/say-hello"),
        ("Api.HTTPGet", "/api/http-get"),
        ("a.b.C", "/a/b/c"),
    ],
)
def test_endpoint_paths_are_the_gateway_rule_backwards(endpoint: str, path: str) -> None:
    assert endpoint_path(endpoint) == path


def test_parse_endpoint() -> None:
    assert parse_endpoint("Say.Hello") == AppEndpoint("Say.Hello", "/say/hello")
    assert parse_endpoint("Say.Hello=/v2/hi") == AppEndpoint("Say.Hello", "/v2/hi")
    with pytest.raises(ValueError, match=r"Service\.Method"):
        parse_endpoint("hello")
    with pytest.raises(ValueError, match="must start with /"):
        parse_endpoint("Say.Hello=hi")


def test_app_url() -> None:
    assert app_url("127.0.0.1:9000") == ("http://127.0.0.1:9000", "127.0.0.1:9000")
    assert app_url("https://app:443/") == ("https://app:443", "app:443")
    for bad in ("nowhere", "ftp://a:1", "a:99999", "http://:80", "a/b:1"):
        with pytest.raises(ValueError, match="is not HOST:PORT"):
            app_url(bad)


def _proxy(answer: httpx.Response | Exception, seen: list[httpx.Request]) -> AppProxy:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return AppProxy("hello", "http://app:1", http)


async def test_request_goes_as_a_json_post_with_metadata_headers() -> None:
    seen: list[httpx.Request] = []
    proxy = _proxy(httpx.Response(200, json={"msg": "hi"}), seen)
    reply = await proxy.post("/say/hello", {"name": "Ann"}, {"x-user": "u1"})
    assert reply == {"msg": "hi"}
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "http://app:1/say/hello")
    assert json.loads(request.content) == {"name": "Ann"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-user"] == "u1"


@pytest.mark.parametrize(
    ("answer", "code", "detail"),
    [
        (httpx.Response(404, json={"detail": "no such thing"}), 404, "no such thing"),
        (httpx.Response(500, text="it broke"), 500, "it broke"),
        (httpx.Response(429), 429, "Too Many Requests"),
        (httpx.Response(200, text="<html>"), 502, "hello answered non-JSON"),
        (httpx.Response(302, headers={"location": "/x"}), 502, "hello answered HTTP 302"),
        (httpx.ConnectError("refused"), 503, "hello is not reachable"),
        (httpx.ReadError("reset"), 502, "hello did not answer"),
    ],
)
async def test_answers_map_to_errors(
    answer: httpx.Response | Exception, code: int, detail: str
) -> None:
    proxy = _proxy(answer, [])
    with pytest.raises(errors.Error) as caught:
        await proxy.post("/say/hello", {}, {})
    assert (caught.value.id, caught.value.code) == ("hello", code)
    assert detail in caught.value.detail


async def test_an_empty_2xx_is_null() -> None:
    assert await _proxy(httpx.Response(204), []).post("/x", None, {}) is None


async def test_an_undeclared_endpoint_still_reaches_the_app() -> None:
    from trimicro.sidecar._serve import app_service
    from trimicro.testing import open_cluster

    seen: list[httpx.Request] = []
    proxy = _proxy(httpx.Response(200, json={"ok": True}), seen)
    service = app_service("hello", [parse_endpoint("Say.Hello=/hi")], proxy)
    async with open_cluster(service) as cluster:
        client = cluster.client
        assert await client.call("hello", "Say.Hello", {"a": 1}) == {"ok": True}
        assert await client.call("hello", "Greeter.SayHello", {"b": 2}) == {"ok": True}
        with pytest.raises(errors.Error) as caught:  # streams are never guessed at
            async with client.stream("hello", "Any.Stream") as stream:
                await stream.receive()
        assert caught.value.code == 404
    assert [(r.url.path, json.loads(r.content)) for r in seen] == [
        ("/hi", {"a": 1}),
        ("/greeter/say-hello", {"b": 2}),
    ]
    await proxy.http.aclose()
