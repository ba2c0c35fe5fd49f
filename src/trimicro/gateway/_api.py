"""The gateway as an ASGI app: CORS, `/rpc`, and the chosen handler for every other path.

Every error is the error JSON with its HTTP status: a service's 400 stays 400, a path that
names no service is 404, an unknown service named in `/rpc` is the client's 503, the
gateway's own refusals carry `"id": "trimicro.gateway"`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs
import httpx

from ..codec import json_dumps
from ..rpc import errors
from ._handlers import Backend, api_path, rpc_endpoint, rpc_path
from ._http import (
    GATEWAY_ID,
    ClientGone,
    HttpRequest,
    Receive,
    Responder,
    Scope,
    Send,
    check_head,
    respond,
    respond_error,
    respond_json,
)
from ._proxy import Target, http_target, proxy_http, proxy_websocket, web_target
from ._websocket import path_stream_target, rpc_stream_target, stream_over_websocket

__all__ = ["HANDLERS", "Cors", "GatewayApp", "HandlerName"]

log = logging.getLogger("trimicro.gateway")

HandlerName = Literal["rpc", "api", "http", "web"]
HANDLERS: tuple[HandlerName, ...] = ("rpc", "api", "http", "web")

#: How long browsers may cache a preflight answer (seconds).
PREFLIGHT_MAX_AGE = 600


@attrs.frozen
class Cors:
    """Which origins may call the gateway from a browser (`*` for any; none: CORS is off)."""

    origins: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def headers(self, request: HttpRequest) -> list[tuple[str, str]]:
        """Headers for a response to `request` (none unless its origin is allowed)."""
        origin = request.header("origin")
        if origin is None or not self.enabled or not self.allows(origin):
            return []
        if "*" in self.origins:
            return [("access-control-allow-origin", "*")]
        return [("access-control-allow-origin", origin), ("vary", "Origin"),
                ("access-control-allow-credentials", "true")]  # fmt: skip

    @staticmethod
    def is_preflight(request: HttpRequest) -> bool:
        return (
            request.method == "OPTIONS"
            and request.header("origin") is not None
            and request.header("access-control-request-method") is not None
        )

    async def preflight(self, request: HttpRequest, send: Send) -> None:
        """204 with what the browser asked for, or 403 for an origin not on the list."""
        allowed = self.headers(request)
        if not allowed:
            origin = request.header("origin")
            error = errors.forbidden(f"origin {origin} is not allowed", id=GATEWAY_ID)
            await respond_error(send, error)
            return
        asked = request.header("access-control-request-headers")
        await respond(send, 204, b"", [*allowed, *_preflight_headers(request, asked)])


def _preflight_headers(request: HttpRequest, asked: str | None) -> list[tuple[str, str]]:
    method = request.header("access-control-request-method") or "POST"
    headers = [("access-control-allow-methods", f"{method}, GET, POST, OPTIONS"),
               ("access-control-max-age", str(PREFLIGHT_MAX_AGE))]  # fmt: skip
    if asked:
        headers.append(("access-control-allow-headers", asked))
    return headers


HttpHandler = Callable[[HttpRequest, Receive, Send], Awaitable[None]]


class GatewayApp:
    """The API gateway (an ASGI 3 app). Serve it with `trimicro.gateway.serve_http`, or let
    `open_gateway` wire it up."""

    def __init__(
        self,
        backend: Backend,
        http: httpx.AsyncClient,
        *,
        handler: HandlerName = "rpc",
        cors: Cors | None = None,
    ) -> None:
        if handler not in HANDLERS:
            raise ValueError(f"handler must be one of {', '.join(HANDLERS)}, got {handler!r}")
        self.backend = backend
        self.http = http
        self.handler = handler
        self.cors = cors or Cors()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(HttpRequest.from_scope(scope), receive, send)
        elif kind == "websocket":
            await self._websocket(HttpRequest.from_scope(scope), receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    # -- HTTP ------------------------------------------------------------------------------

    async def _http(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if self.cors.enabled and Cors.is_preflight(request):
            await self.cors.preflight(request, send)
            return
        responder = Responder(send, self.cors.headers(request))
        try:
            await self._route(request, receive, responder)
        except errors.Error as error:
            await _answer(responder, error)
        except ClientGone:
            pass
        except Exception:
            log.exception("%s %s failed in the gateway", request.method, request.path)
            await _answer(responder, errors.internal_server_error("gateway error", id=GATEWAY_ID))

    async def _route(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        check_head(request, self.backend.limits)
        if request.path == "/rpc":
            await rpc_endpoint(self.backend, request, receive, send)
        elif request.path == "/" and request.method == "GET":
            await respond_json(send, 200, self._about())
        elif self.handler == "rpc":
            await rpc_path(self.backend, request, receive, send)
        elif self.handler == "api":
            await api_path(self.backend, request, receive, send)
        else:
            target = self._proxy_target(request)
            await proxy_http(self.backend, self.http, request, receive, send, target)

    def _proxy_target(self, request: HttpRequest) -> Target:
        if self.handler == "web":
            return web_target(self.backend.namespace, request)
        return http_target(self.backend.namespace, request)

    def _about(self) -> dict[str, Any]:
        return {"gateway": "trimicro", "handler": self.handler, "namespace": self.backend.namespace}

    # -- websockets ------------------------------------------------------------------------

    async def _websocket(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        origin = request.header("origin")
        try:
            check_head(request, self.backend.limits)
            if self.cors.enabled and origin is not None and not self.cors.allows(origin):
                raise errors.forbidden(f"origin {origin} is not allowed", id=GATEWAY_ID)
            await self._websocket_route(request, receive, send)
        except errors.Error as error:
            await _deny(send, error)

    async def _websocket_route(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if request.path == "/rpc":
            target = rpc_stream_target(request)
        elif self.handler == "rpc":
            target = await path_stream_target(self.backend, request)
        elif self.handler in ("http", "web"):
            proxied = self._proxy_target(request)
            await proxy_websocket(self.backend, request, receive, send, proxied)
            return
        else:
            raise errors.not_found("the api handler serves no websockets", id=GATEWAY_ID)
        await stream_over_websocket(self.backend, request, receive, send, target)


async def _answer(responder: Responder, error: errors.Error) -> None:
    if responder.started:
        # The head is out: all that is left is to cut the response short.
        # Returning now makes hypercorn close the connection mid-body, which the client sees.
        log.warning("response cut short: %s", error)
        return
    await respond_error(responder, error)


async def _deny(send: Send, error: errors.Error) -> None:
    """Refuse a websocket before accepting it, as an HTTP error response (hypercorn supports
    the ASGI `websocket.http.response` extension). After accepting, errors are close codes."""
    code = error.code if 400 <= error.code <= 599 else 500
    data = json_dumps(error.to_dict())
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "websocket.http.response.start", "status": code, "headers": head})
    await send({"type": "websocket.http.response.body", "body": data})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
