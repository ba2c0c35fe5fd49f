"""HTTP limits on real sockets: the request-head deadline (slowloris), keep-alive, 431, 413,
the body deadline, and CORS."""

from __future__ import annotations

import socket

import trio

from trimicro.gateway import HttpLimits

from .conftest import http_client, make_greeter, running_gateway

HEAD = b"POST /rpc HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"


async def _connect(address: str) -> trio.SocketStream:
    host, _, port = address.rpartition(":")
    return await trio.open_tcp_stream(host, int(port))


async def _read_until_closed(stream: trio.SocketStream) -> bytes:
    received = b""
    while chunk := await stream.receive_some(65536):
        received += chunk
    return received


async def _read_response(stream: trio.SocketStream) -> bytes:
    """One whole response with a Content-Length body."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += await stream.receive_some(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


async def _trickle(stream: trio.SocketStream, data: bytes, interval: float) -> float:
    """Send `data` a byte at a time; return when the server closed (its time)."""
    try:
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(interval)
    except trio.BrokenResourceError:
        pass
    with trio.fail_after(5):
        await _read_until_closed(stream)
    return trio.current_time()


async def test_slowloris_head_is_dropped_within_the_head_timeout() -> None:
    limits = HttpLimits(head_timeout=1.0)
    async with running_gateway(make_greeter(), limits=limits) as (gateway, _):
        async with await _connect(gateway.address) as stream:
            started = trio.current_time()
            # Each byte arrives well within any per-read timeout; the head never completes.
            closed_at = await _trickle(stream, HEAD + b"X-Slow: " + b"a" * 200, interval=0.05)
    assert 0.9 <= closed_at - started < 1.6


async def test_head_deadline_restarts_for_each_request_on_a_kept_alive_connection() -> None:
    limits = HttpLimits(head_timeout=0.5)
    body = b'{"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "A"}}'
    request = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    async with running_gateway(make_greeter(), limits=limits) as (gateway, _):
        async with await _connect(gateway.address) as stream:
            for _ in range(2):  # idle longer than the head timeout between requests: still open
                await stream.send_all(request)
                reply = await _read_response(stream)
                assert reply.startswith(b"HTTP/1.1 200"), reply
                await trio.sleep(0.7)
            started = trio.current_time()
            closed_at = await _trickle(stream, HEAD, interval=0.05)
    assert 0.45 <= closed_at - started < 1.0


async def test_idle_connection_closes_after_the_keep_alive_timeout() -> None:
    limits = HttpLimits(keep_alive_timeout=0.5, head_timeout=5.0)
    async with running_gateway(make_greeter(), limits=limits) as (gateway, _):
        async with await _connect(gateway.address) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
            started = trio.current_time()
            with trio.fail_after(3):
                received = await _read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 200")
    assert 0.4 <= trio.current_time() - started < 1.5


async def test_huge_headers_are_431() -> None:
    big = HEAD + b"X-Big: " + b"a" * (24 * 1024) + b"\r\n\r\n"
    async with running_gateway(make_greeter()) as (gateway, _):
        async with await _connect(gateway.address) as stream:
            await stream.send_all(big)  # whole, in one read: seen by the app
            whole = await _read_response(stream)
        async with await _connect(gateway.address) as stream:
            growing = HEAD + b"X-Big: " + b"a" * (20 * 1024)  # never completed
            for start in range(0, len(growing), 4096):  # over the cap while incomplete: h11
                await stream.send_all(growing[start : start + 4096])
                await trio.sleep(0.01)
            with trio.fail_after(5):
                grown = await _read_until_closed(stream)
    assert whole.startswith(b"HTTP/1.1 431"), whole[:100]
    assert b"request head over 16384 bytes" in whole
    assert grown.startswith(b"HTTP/1.1 431"), grown[:100]


async def test_headers_under_the_cap_pass() -> None:
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        response = await http.get("/", headers={"X-Big": "a" * (12 * 1024)})
    assert response.status_code == 200


async def test_oversize_body_is_413() -> None:
    limits = HttpLimits(max_body_bytes=1024)
    big = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "x" * 2000}}

    async def chunked() -> object:
        for _ in range(4):
            yield b"x" * 400

    async with (
        running_gateway(make_greeter(), limits=limits) as (gateway, _),
        http_client(gateway) as http,
    ):
        declared = await http.post("/rpc", json=big)
        streamed = await http.post("/greeter/say/hello", content=chunked())  # no Content-Length
        small = await http.post("/greeter/say/hello", json={"name": "fits"})
    assert declared.status_code == 413
    assert declared.json()["detail"] == "request body over 1024 bytes"
    assert streamed.status_code == 413
    assert small.status_code == 200


async def test_oversize_body_is_refused_before_it_is_sent() -> None:
    # The Content-Length alone decides: the server answers without waiting for the body.
    async with running_gateway(make_greeter()) as (gateway, _):
        async with await _connect(gateway.address) as stream:
            await stream.send_all(HEAD + b"Content-Length: %d\r\n\r\n" % (64 * 1024 * 1024))
            with trio.fail_after(5):
                received = await _read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 413")


async def test_slow_body_is_408() -> None:
    limits = HttpLimits(body_timeout=0.5)
    async with running_gateway(make_greeter(), limits=limits) as (gateway, _):
        async with await _connect(gateway.address) as stream:
            await stream.send_all(HEAD + b"Content-Length: 100\r\n\r\n{")
            with trio.fail_after(5):
                received = await _read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 408")


async def test_cors_preflight_and_response_headers() -> None:
    origin = "https://app.example"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    async with (
        running_gateway(make_greeter(), cors=[origin]) as (gateway, _),
        http_client(gateway) as http,
    ):
        allowed = await http.options("/rpc", headers=preflight)
        refused = await http.options(
            "/rpc", headers={**preflight, "Origin": "https://evil.example"}
        )
        body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "Cors"}}
        call = await http.post("/rpc", json=body, headers={"Origin": origin})
        error = await http.post("/rpc", json={}, headers={"Origin": origin})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "content-type, authorization"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert call.headers["access-control-allow-origin"] == origin
    assert call.headers["vary"] == "Origin"
    assert error.status_code == 400  # errors carry CORS headers too, so browsers can read them
    assert error.headers["access-control-allow-origin"] == origin


async def test_cors_any_origin_and_cors_off() -> None:
    headers = {"Origin": "https://x.example", "Access-Control-Request-Method": "GET"}
    async with (
        running_gateway(make_greeter(), cors=["*"]) as (gateway, _),
        http_client(gateway) as http,
    ):
        star = await http.options("/greeter/say/hello", headers=headers)
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        off = await http.get("/", headers={"Origin": "https://x.example"})
    assert star.status_code == 204
    assert star.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in off.headers


def test_limits_validate() -> None:
    import pytest

    with pytest.raises(ValueError, match="head_timeout"):
        HttpLimits(head_timeout=0)
    assert socket  # the raw-socket tests above use trio's sockets
