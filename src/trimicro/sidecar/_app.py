"""The sidecar's HTTP surface (an ASGI app), for the app beside it and for operators.

| request | answers |
|---|---|
| `GET /health` | the app's health: 200 `{"status": "ok", ...}`, 503 while its check fails |
| `GET /registry[?service=NAME]` | every record, or NAME's (one per version; 404 if none) |
| `POST /registry` | registers the record in the body (kept alive until deleted) |
| `DELETE /registry` | deregisters the record in the body |
| `POST /rpc` | calls any service, exactly as the gateway's `/rpc` |
| `POST /broker?topic=T` | publishes the JSON body to T |
| websocket `/broker?topic=T[&queue=Q]` | each message published to T, one JSON frame each |
| websocket `/rpc?service=S&endpoint=E` | a streaming call, as the gateway's |

Errors are the error JSON with its HTTP status, as the gateway's; the sidecar's own carry
`"id": "trimicro.sidecar"`. Bodies and heads have the gateway's caps and deadlines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..broker import Broker
from ..codec import json_dumps, unstructure
from ..gateway import Backend
from ..gateway._handlers import rpc_endpoint
from ..gateway._http import (
    ClientGone,
    HttpRequest,
    Receive,
    Responder,
    Scope,
    Send,
    check_head,
    read_body,
    respond_error,
    respond_json,
)
from ..gateway._websocket import rpc_stream_target, stream_over_websocket
from ..registry import Node, Registry, RegistryError
from ..rpc import errors
from ._broker import publish, subscribe_over_websocket
from ._health import AppHealth
from ._registrations import SIDECAR_ID, Registrations, parse_record

__all__ = ["SidecarApp"]

log = logging.getLogger("trimicro.sidecar")

_REGISTRY_METHODS = "GET, POST, DELETE"


class SidecarApp:
    """The sidecar for app `name`: `open_sidecar` wires it; serve it with `serve_http`."""

    def __init__(
        self,
        name: str,
        backend: Backend,
        registry: Registry,
        registrations: Registrations,
        broker: Broker,
        health: AppHealth,
        presence: Callable[[], Node | None],
    ) -> None:
        self.name = name
        self.backend = backend
        self.registry = registry
        self.registrations = registrations
        self.broker = broker
        self.health = health
        #: The node serving the app's name while it is registered (None while unhealthy).
        self.presence = presence

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(HttpRequest.from_scope(scope), receive, send)
        elif kind == "websocket":
            await self._websocket(HttpRequest.from_scope(scope), receive, send)

    # -- HTTP ------------------------------------------------------------------------------

    async def _http(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        sender = Responder(send)
        try:
            check_head(request, self.backend.limits)
            await self._route(request, receive, sender)
        except errors.Error as error:
            if not sender.started:
                await respond_error(sender, error)
        except ClientGone:
            pass
        except Exception:
            log.exception("%s %s failed in the sidecar", request.method, request.path)
            if not sender.started:
                failure = errors.internal_server_error("sidecar error", id=SIDECAR_ID)
                await respond_error(sender, failure)

    async def _route(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        path, method = request.path, request.method
        if path == "/rpc":
            await rpc_endpoint(self.backend, request, receive, send)
        elif path == "/registry":
            await self._registry(request, receive, send)
        elif path == "/broker" and method == "POST":
            await publish(self.backend.client, self.backend.limits, request, receive, send)
        elif path == "/broker":
            await _not_allowed(send, "POST /broker publishes; subscribe with a websocket", "POST")
        elif path == "/health" and method == "GET":
            await self._health(send)
        elif path == "/" and method == "GET":
            await respond_json(send, 200, {"sidecar": "trimicro", "service": self.name})
        else:
            raise errors.not_found(f"no such resource: {method} {path}", id=SIDECAR_ID)

    async def _health(self, send: Send) -> None:
        node = self.presence()
        healthy = self.health.healthy is True
        answer = {
            "status": "ok" if healthy else "unhealthy",
            "service": self.name,
            "app": self.health.to_dict(),
            "registered": node is not None,
            "node": None if node is None else unstructure(node, for_json=True),
        }
        await respond_json(send, 200 if healthy else 503, answer)

    async def _registry(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if request.method == "GET":
            await respond_json(send, 200, await self._records(request))
            return
        if request.method not in ("POST", "DELETE"):
            await _not_allowed(send, f"/registry takes {_REGISTRY_METHODS}", _REGISTRY_METHODS)
            return
        record = parse_record(await read_body(receive, request, self.backend.limits))
        if request.method == "POST":
            await self.registrations.add(record)
            action = "registered"
        else:
            await self.registrations.remove(record)
            action = "deregistered"
        nodes = [node.id for node in record.nodes]
        answer = {action: record.name, "version": record.version, "nodes": nodes}
        await respond_json(send, 200, answer)

    async def _records(self, request: HttpRequest) -> list[Any]:
        service = dict(request.query()).get("service")
        try:
            if service is None:
                records = await self.registry.list_services()
            else:
                records = await self.registry.get_service(service)
        except RegistryError as exc:
            raise errors.unavailable(f"registry: {exc}", id=SIDECAR_ID) from None
        if service is not None and not records:
            raise errors.not_found(f"service {service} not found", id=SIDECAR_ID)
        return [unstructure(record, for_json=True) for record in records]

    # -- websockets ------------------------------------------------------------------------

    async def _websocket(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            check_head(request, self.backend.limits)
            if request.path == "/broker":
                await subscribe_over_websocket(self.broker, request, receive, send)
            elif request.path == "/rpc":
                target = rpc_stream_target(request)
                await stream_over_websocket(self.backend, request, receive, send, target)
            else:
                raise errors.not_found(f"no websocket at {request.path}", id=SIDECAR_ID)
        except errors.Error as error:
            await _deny(send, error)


async def _not_allowed(send: Send, detail: str, allow: str) -> None:
    error = errors.method_not_allowed(detail, id=SIDECAR_ID)
    await respond_error(send, error, [("allow", allow)])


async def _deny(send: Send, error: errors.Error) -> None:
    """Refuse a websocket before accepting it, with the error JSON as an HTTP response."""
    code = error.code if 400 <= error.code <= 599 else 500
    data = json_dumps(error.to_dict())
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "websocket.http.response.start", "status": code, "headers": head})
    await send({"type": "websocket.http.response.body", "body": data})
