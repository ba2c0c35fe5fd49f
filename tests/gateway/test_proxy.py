"""The `http` and `web` handlers: reverse proxies to HTTP apps in the registry, with streaming
bodies and websockets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected

from trimicro.gateway import serve_http
from trimicro.gateway._proxy import open_websocket
from trimicro.registry import Node, ServiceRecord, open_registry

from .conftest import http_client, make_greeter, running_gateway

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A backend: describes each request; /download streams 1 MiB; websockets echo."""
    if scope["type"] == "websocket":
        await _echo_websocket(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    digest, length = hashlib.sha256(), 0
    while True:
        message = await receive()
        digest.update(message.get("body", b""))
        length += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"].endswith("/download"):
        await _stream(send)
        return
    info = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "length": length,
        "sha256": digest.hexdigest(),
    }
    body = json.dumps(info).encode()
    headers = [(b"content-type", b"application/json"), (b"x-backend", b"echo"),
               (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]  # fmt: skip
    await send({"type": "http.response.start", "status": 207, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(16):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _echo_websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # connect
    if scope["path"].endswith("/private"):
        await send({"type": "websocket.close", "code": 1008})  # refused: 403
        return
    protocols = scope.get("subprotocols") or [None]
    await send({"type": "websocket.accept", "subprotocol": protocols[0]})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            return
        reply = {"type": "websocket.send"}
        if message.get("text") is not None:
            reply["text"] = f"{scope['path']}:{message['text']}"
        else:
            reply["bytes"] = message["bytes"][::-1]
        await send(reply)


@asynccontextmanager
async def backend_registered(registry_url: str, name: str) -> AsyncIterator[str]:
    """The echo app on a loopback port, registered as `name`; yields its address."""
    async with trio.open_nursery() as nursery, open_registry(registry_url) as registry:
        address = await nursery.start(serve_http, echo_app, "127.0.0.1:0")
        record = ServiceRecord(name, nodes=[Node(f"{name}-1", address, {"transport": "http"})])
        await registry.register(record, ttl=60)
        yield address
        nursery.cancel_scope.cancel()


async def test_http_handler_round_trips_headers_and_bodies() -> None:
    upload = CHUNK * 8  # 512 KiB, streamed up

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(upload), len(CHUNK)):
            yield upload[start : start + len(CHUNK)]

    async with running_gateway(make_greeter(), handler="http", namespace="trimicro.api") as (
        gateway,
        cluster,
    ):
        async with (
            backend_registered(cluster.registry, "trimicro.api.files"),
            http_client(gateway) as http,
        ):
            posted = await http.post(
                "/files/upload?kind=raw",
                content=chunks(),
                headers={"X-Trace": "t-1", "Connection": "keep-alive, X-Hop", "X-Hop": "drop"},
            )
            download = await http.get("/files/download")
            unknown = await http.get("/nobody/x")
            versioned = await http.get("/v1/files/x")
    assert posted.status_code == 207
    assert posted.headers["x-backend"] == "echo"
    assert posted.headers.get_list("set-cookie") == ["a=1", "b=2"]
    seen = posted.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/files/upload"  # the http handler keeps the whole path
    assert seen["query"] == "kind=raw"
    assert seen["length"] == len(upload)
    assert seen["sha256"] == hashlib.sha256(upload).hexdigest()
    assert seen["headers"]["x-trace"] == "t-1"
    assert "x-hop" not in seen["headers"]  # named in Connection: hop-by-hop
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-host"] == gateway.address
    assert download.status_code == 200
    assert download.content == CHUNK * 16
    assert unknown.status_code == 404
    assert versioned.status_code == 404  # v1.files is not registered
    assert versioned.json()["detail"] == "service trimicro.api.v1.files not found"


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_http_handler_caps_streamed_bodies_and_reports_dead_backends() -> None:
    from trimicro.gateway import HttpLimits

    async with running_gateway(
        make_greeter(), handler="http", namespace="t", limits=HttpLimits(max_body_bytes=1000)
    ) as (gateway, cluster):
        async with open_registry(cluster.registry) as registry, http_client(gateway) as http:
            dead = ServiceRecord("t.gone", nodes=[Node("gone-1", "127.0.0.1:9")])
            await registry.register(dead, ttl=60)
            unreachable = await http.get("/gone/x")
            async with backend_registered(cluster.registry, "t.files"):
                too_big = await http.post("/files/x", content=b"x" * 2000)
                streamed = await http.post("/files/x", content=_pieces(b"x" * 2000, 500))
    assert unreachable.status_code == 502
    assert unreachable.json()["id"] == "trimicro.gateway"
    assert too_big.status_code == 413
    assert streamed.status_code == 413  # counted while streaming upstream


async def test_web_handler_strips_the_prefix_and_proxies_websockets() -> None:
    async with running_gateway(make_greeter(), handler="web", namespace="trimicro.web") as (
        gateway,
        cluster,
    ):
        async with (
            backend_registered(cluster.registry, "trimicro.web.dash"),
            http_client(gateway) as http,
        ):
            page = await http.get("/dash/static/app.js?v=2")
            async with open_websocket(gateway.address, "/dash/live", subprotocols=["chat"]) as ws:
                assert ws.subprotocol == "chat"
                await ws.send_message("hi")
                text = await ws.get_message()
                await ws.send_message(b"\x01\x02")
                data = await ws.get_message()
                await ws.send_message("bye")
                try:
                    await ws.get_message()
                    raise AssertionError("expected a close")
                except ConnectionClosed as closed:
                    assert closed.reason is not None
                    close_code = closed.reason.code
            try:
                async with open_websocket(gateway.address, "/dash/private"):
                    raise AssertionError("expected a refusal")
            except ConnectionRejected as refused:
                refused_status = refused.status_code
    seen = page.json()
    assert seen["path"] == "/static/app.js"
    assert seen["query"] == "v=2"
    assert seen["headers"]["x-trimicro-web-base-path"] == "/dash"
    assert (text, data, close_code) == ("/live:hi", b"\x02\x01", 4001)
    assert refused_status == 403
