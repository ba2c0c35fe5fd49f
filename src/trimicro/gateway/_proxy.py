"""The `http` and `web` handlers: reverse proxies to HTTP apps found in the registry.

A node's address is the `host:port` of the app's HTTP server. Bodies stream both ways (httpx
upstream, ASGI downstream) without being buffered whole; the request body keeps its caps.
Websocket upgrades are proxied too, frame by frame, with trio-websocket.

`http` forwards the path unchanged (go-micro's API proxy); `web` strips the app's name, as
micro's web proxy does, and tells the app where it is mounted in `X-Trimicro-Web-Base-Path`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

import attrs
import httpx
import trio
import trio_websocket
import wsproto.events
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState

from ..nursery import open_owned_nursery
from ..rpc import errors
from ._handlers import Backend, proxy_route, qualified, web_route
from ._http import (
    GATEWAY_ID,
    HOP_BY_HOP,
    HttpRequest,
    Message,
    Receive,
    Send,
    body_chunks,
)

__all__ = [
    "BASE_PATH_HEADER",
    "Target",
    "http_target",
    "open_websocket",
    "proxy_http",
    "proxy_websocket",
    "web_target",
]

log = logging.getLogger("trimicro.gateway")

BASE_PATH_HEADER = "x-trimicro-web-base-path"

#: Headers of the websocket handshake itself, which trio-websocket writes for its own.
_HANDSHAKE = frozenset(
    {"host", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
     "sec-websocket-protocol", "sec-websocket-accept"}
)  # fmt: skip


@attrs.frozen
class Target:
    """Where a proxied request goes: the registered service, the upstream path (with query),
    and the mount point a `web` app is told about."""

    service: str
    path: str
    base_path: str | None = None


def http_target(namespace: str, request: HttpRequest) -> Target:
    """`http` handler: `/<name>/...` (or `/v<N>/<name>/...`) → `<namespace>.<name>`."""
    name = proxy_route(request.path)
    if name is None:
        raise errors.not_found(f"no service for path {request.path}", id=GATEWAY_ID)
    return Target(qualified(namespace, name), _with_query(request.path, request))


def web_target(namespace: str, request: HttpRequest) -> Target:
    """`web` handler: `/<name>/rest` → `<namespace>.<name>` serving `/rest`."""
    found = web_route(request.path)
    if found is None:
        raise errors.not_found(f"no web app for path {request.path}", id=GATEWAY_ID)
    name, rest = found
    return Target(qualified(namespace, name), _with_query(rest, request), f"/{name}")


def _with_query(path: str, request: HttpRequest) -> str:
    return f"{path}?{request.query_string}" if request.query_string else path


def _connection_tokens(request: HttpRequest) -> set[str]:
    listed = request.header("connection") or ""
    return {token.strip().lower() for token in listed.split(",") if token.strip()}


def forwarded_headers(request: HttpRequest, target: Target) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones, plus `X-Forwarded-*` (and the web mount)."""
    drop = HOP_BY_HOP | _connection_tokens(request) | {"host", BASE_PATH_HEADER}
    headers = [(k, v) for k, v in request.headers if k not in drop and k != "x-forwarded-for"]
    previous = request.header("x-forwarded-for")
    chain = f"{previous}, {request.client}" if previous else request.client
    headers += [("x-forwarded-for", chain), ("x-forwarded-host", request.host),
                ("x-forwarded-proto", request.scheme)]  # fmt: skip
    if target.base_path is not None:
        headers.append((BASE_PATH_HEADER, target.base_path))
    return headers


def _has_body(request: HttpRequest) -> bool:
    return request.header("content-length") not in (None, "0") or bool(
        request.header("transfer-encoding")
    )


def _response_head(response: httpx.Response) -> Message:
    headers = [(k, v) for k, v in response.headers.raw if k.decode("latin-1").lower()
               not in HOP_BY_HOP]  # fmt: skip
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


async def proxy_http(
    backend: Backend,
    http: httpx.AsyncClient,
    request: HttpRequest,
    receive: Receive,
    send: Send,
    target: Target,
) -> None:
    """Forward one request to a node of `target.service` and stream the answer back."""
    address = backend.node_address(await backend.records(target.service))
    body: AsyncIterator[bytes] | None = None
    if _has_body(request):
        body = body_chunks(receive, request, backend.limits)
    upstream = http.build_request(
        request.method,
        f"http://{address}{target.path}",
        headers=forwarded_headers(request, target),
        content=body,
    )
    response = await _send_upstream(http, upstream, target.service)
    try:
        await send(_response_head(response))
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()


async def _send_upstream(
    http: httpx.AsyncClient, upstream: httpx.Request, service: str
) -> httpx.Response:
    try:
        return await http.send(upstream, stream=True)
    except httpx.TimeoutException:
        detail = f"{service}: no answer in time"
        raise errors.Error(GATEWAY_ID, 504, detail, "Gateway Timeout") from None
    except httpx.TransportError as exc:
        detail = f"{service}: {type(exc).__name__}: {exc}"
        raise errors.Error(GATEWAY_ID, 502, detail, "Bad Gateway") from None


# -- websockets ----------------------------------------------------------------------------


def _subprotocols(request: HttpRequest) -> list[str]:
    offered = request.header("sec-websocket-protocol") or ""
    return [p.strip() for p in offered.split(",") if p.strip()]


def _upstream_headers(request: HttpRequest, target: Target) -> list[tuple[bytes, bytes]]:
    headers = forwarded_headers(request, target)
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers if k not in _HANDSHAKE]


class _ClientConnection(trio_websocket.WebSocketConnection):
    """trio-websocket's connection, but a ping that crosses our close frame goes unanswered.

    trio-websocket (0.12, python-trio/trio-websocket#184) answers it anyway; wsproto refuses
    to send after a close frame (LocalProtocolError), which kills the reader task, and
    `open_websocket`'s close then waited out `connect_timeout` (10 s) for a handshake nobody
    would complete, and raised. hypercorn pings right after accepting, so a client closing
    at once often met it. RFC 6455 §5.5.1: after its close frame an endpoint sends nothing."""

    async def _handle_ping_event(self, event: wsproto.events.Ping) -> None:
        if self._wsproto.state is ConnectionState.OPEN:
            await super()._handle_ping_event(event)


@asynccontextmanager
async def open_websocket(
    address: str,
    path: str,
    *,
    subprotocols: list[str] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    max_message_size: int = 4 * 1024 * 1024,
    connect_timeout: float = 10.0,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A websocket client on a TCP stream we own: trio-websocket's `open_websocket_url`
    leaves its socket open when the server refuses the handshake."""
    host, _, port = address.rpartition(":")
    with trio.fail_after(connect_timeout):
        stream = await trio.open_tcp_stream(host.strip("[]"), int(port))
    async with stream, open_owned_nursery() as nursery:
        ws = _ClientConnection(
            stream, WSConnection(ConnectionType.CLIENT), host=address, path=path,
            client_subprotocols=subprotocols, client_extra_headers=headers,
            max_message_size=max_message_size,
        )  # fmt: skip
        # trio_websocket.wrap_client_stream, with the connection class above.
        nursery.start_soon(ws._reader_task)
        with trio.fail_after(connect_timeout):
            await ws._open_handshake.wait()
        try:
            yield ws
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(connect_timeout):
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def proxy_websocket(
    backend: Backend, request: HttpRequest, receive: Receive, send: Send, target: Target
) -> None:
    """Relay a websocket to a node of `target.service`, message by message, until either
    side closes (the close code goes across). A refused upgrade keeps its status."""
    address = backend.node_address(await backend.records(target.service))
    try:
        async with open_websocket(
            address,
            target.path,
            subprotocols=_subprotocols(request),
            headers=_upstream_headers(request, target),
            max_message_size=backend.limits.max_body_bytes,
            connect_timeout=backend.limits.call_timeout,
        ) as upstream:
            message: Message = {"type": "websocket.accept", "subprotocol": upstream.subprotocol}
            await send(message)
            await _relay(upstream, receive, send)
    except trio_websocket.ConnectionRejected as refused:
        status = refused.status_code if 400 <= refused.status_code <= 599 else 502
        detail = f"{target.service} refused the websocket"
        raise errors.Error(GATEWAY_ID, status, detail, HTTPStatus(status).phrase) from None
    except (trio_websocket.HandshakeError, OSError, trio.TooSlowError) as exc:
        raise errors.Error(GATEWAY_ID, 502, f"{target.service}: {exc!r}", "Bad Gateway") from None


#: Close codes that may not be sent in a close frame (RFC 6455 §7.4.1).
_UNSENDABLE = frozenset({1005, 1006, 1015})


async def _relay(
    upstream: trio_websocket.WebSocketConnection, receive: Receive, send: Send
) -> None:
    closed: list[tuple[int, str]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_client_to_upstream, receive, upstream, nursery.cancel_scope)
        closed.append(await _upstream_to_client(upstream, send))
        nursery.cancel_scope.cancel()
    if closed:  # the app closed first: pass its close on (a client that left needs none)
        code, reason = closed[0]
        code = 1000 if code in _UNSENDABLE else code
        await send({"type": "websocket.close", "code": code, "reason": reason})


async def _client_to_upstream(
    receive: Receive, upstream: trio_websocket.WebSocketConnection, done: trio.CancelScope
) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            await upstream.aclose(message.get("code", 1000))
            done.cancel()
            return
        data = message.get("text")
        try:
            await upstream.send_message(data if data is not None else message.get("bytes") or b"")
        except trio_websocket.ConnectionClosed:
            return  # the other direction reports the close


async def _upstream_to_client(
    upstream: trio_websocket.WebSocketConnection, send: Send
) -> tuple[int, str]:
    while True:
        try:
            data = await upstream.get_message()
        except trio_websocket.ConnectionClosed as closed:
            reason = closed.reason
            return (reason.code, reason.reason or "") if reason is not None else (1000, "")
        key = "text" if isinstance(data, str) else "bytes"
        await send({"type": "websocket.send", key: data})
