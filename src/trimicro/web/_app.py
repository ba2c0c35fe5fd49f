"""The dashboard as an ASGI app: pages, static files, the JSON API and the live feed.

| path | answers |
|---|---|
| `GET /` | the services list (live: `static/dashboard.js` follows `/ws/registry`) |
| `GET /service/<name>` | versions, nodes, metadata, endpoint schemas, a call form each |
| `GET /network` | nodes, routes and graph of a network node, or "not connected" |
| `GET /api/services` | `[{"name", "versions"}]` |
| `GET /api/service/<name>` | `trimicro service NAME`'s records, plus each endpoint's template |
| `POST /api/call` | `{"service", "endpoint", "request", "metadata"?, "timeout"?}` → the reply |
| `WS /ws/registry` | a snapshot of the services, then one message per registry change |

Errors of the JSON API are the error JSON with its status, as the gateway's. A browser on
another site may not use the dashboard: `POST /api/call` takes JSON only (a cross-site form
cannot send it without asking first, and the dashboard never says yes) and, like the
websocket, refuses an `Origin` other than the dashboard's own.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from ..codec import JSON as JSON_CODEC
from ..codec import CodecError, json_dumps, json_loads
from ..gateway import HttpLimits
from ..gateway._http import (
    ClientGone,
    HttpRequest,
    Receive,
    Responder,
    Scope,
    Send,
    check_head,
    read_body,
    respond,
    respond_error,
    respond_json,
)
from ..registry import Registry, RegistryError, ServiceRecord, WatchEvent
from ..rpc import Client, errors
from ._apps import WebApps
from ._data import record_json, services_json
from ._feed import RegistryFeed
from ._network import NetworkView
from ._pages import error_page, network_page, not_connected_page, service_page, services_page
from ._static import Static

__all__ = ["WEB_ID", "CallRequest", "DashboardApp", "web_limits"]

log = logging.getLogger("trimicro.web")

#: The `id` of errors the dashboard itself answers with.
WEB_ID = "trimicro.web"

#: What a browser may load and where it may connect: this dashboard only, nothing inline.
_SECURITY_HEADERS = [
    ("content-security-policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
]  # fmt: skip


def web_limits() -> HttpLimits:
    """The gateway's limits with a 1 MiB body: `/api/call` takes a request typed into a
    form, never an upload."""
    return HttpLimits(max_body_bytes=1024 * 1024)


@attrs.frozen
class CallRequest:
    """The body of `POST /api/call`; `timeout` (seconds) is capped by the call budget."""

    service: str
    endpoint: str
    request: Any = None
    metadata: dict[str, str] = attrs.field(factory=dict)
    timeout: float | None = None


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise errors.bad_request(f'"{name}" must be a non-empty string', id=WEB_ID)
    return value


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise errors.bad_request('"timeout" must be a positive number of seconds', id=WEB_ID)
    return float(value)


def parse_call(body: bytes) -> CallRequest:
    try:
        data = json_loads(body)
    except CodecError as exc:
        raise errors.bad_request(f"body: {exc}", id=WEB_ID) from None
    if not isinstance(data, dict):
        raise errors.bad_request('body must be a JSON object {"service", "endpoint", ...}',
                                 id=WEB_ID)  # fmt: skip
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise errors.bad_request('"metadata" must be an object of strings', id=WEB_ID)
    return CallRequest(_text(data, "service"), _text(data, "endpoint"), data.get("request"),
                       metadata, _timeout(data.get("timeout")))  # fmt: skip


def _same_origin(request: HttpRequest) -> bool:
    """No `Origin` (not a browser, or a same-origin GET) or one naming this very host."""
    origin = request.header("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.host


def _event_message(event: WatchEvent) -> dict[str, Any]:
    record = event.service
    return {"type": "event", "action": event.action, "name": record.name,
            "version": record.version, "nodes": len(record.nodes)}  # fmt: skip


class DashboardApp:
    """The web dashboard (an ASGI 3 app); `open_dashboard` wires it up and serves it."""

    def __init__(
        self,
        registry: Registry,
        client: Client,
        feed: RegistryFeed,
        *,
        network: NetworkView | None = None,
        limits: HttpLimits | None = None,
        apps: WebApps | None = None,
    ) -> None:
        self.registry = registry
        self.client = client
        self.feed = feed
        self.network = network
        self.limits = limits or web_limits()
        self.static = Static.load()
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(
                HttpRequest.from_scope(scope), receive, Responder(send, _SECURITY_HEADERS)
            )
        elif scope["type"] == "websocket":
            await self._websocket(HttpRequest.from_scope(scope), receive, send)

    # -- HTTP ------------------------------------------------------------------------------

    async def _http(self, request: HttpRequest, receive: Receive, send: Responder) -> None:
        try:
            check_head(request, self.limits)
            if self.apps is not None and self.apps.serves(request.path):
                # A web app's own pages: its headers, not the dashboard's security policy.
                await self.apps.http(request, receive, Responder(send.raw))
                return
            await self._route(request, receive, send)
        except errors.Error as error:
            if not send.started:
                await self._error(request, send, error)
        except ClientGone:
            pass
        except Exception:
            log.exception("%s %s failed in the dashboard", request.method, request.path)
            if not send.started:
                failure = errors.internal_server_error("dashboard error", id=WEB_ID)
                await self._error(request, send, failure)

    async def _error(self, request: HttpRequest, send: Send, error: errors.Error) -> None:
        if request.path.startswith("/api/"):
            await respond_error(send, error)
            return
        status = error.code if 400 <= error.code <= 599 else 500
        page = error_page(status, error.detail).encode()
        await respond(send, status, page, [("content-type", "text/html; charset=utf-8")])

    async def _route(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        path = request.path
        if path == "/api/call":
            await self._call(request, receive, send)
            return
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(f"{request.method} {path}", id=WEB_ID)
        if path.startswith("/static/"):
            await self.static.serve(path.removeprefix("/static/"), send)
        elif path == "/":
            await _html(send, services_page(await self._list()))
        elif path.startswith("/service/"):
            name = path.removeprefix("/service/")
            await _html(send, service_page(name, await self._records(name)))
        elif path == "/network":
            await _html(send, await self._network_page())
        elif path == "/api/services":
            await respond_json(send, 200, services_json(await self._list()))
        elif path.startswith("/api/service/"):
            records = await self._records(path.removeprefix("/api/service/"))
            await respond_json(send, 200, [record_json(r) for r in records])
        else:
            raise errors.not_found(f"no page at {path}", id=WEB_ID)

    async def _list(self) -> list[ServiceRecord]:
        try:
            return await self.registry.list_services()
        except RegistryError as exc:
            raise errors.unavailable(f"registry: {exc}", id=WEB_ID) from None

    async def _records(self, name: str) -> list[ServiceRecord]:
        try:
            records = await self.registry.get_service(name)
        except RegistryError as exc:
            raise errors.unavailable(f"registry: {exc}", id=WEB_ID) from None
        if not records:
            raise errors.not_found(f"service {name} not found", id=WEB_ID)
        return records

    async def _network_page(self) -> str:
        view = self.network
        if view is None:
            return not_connected_page()
        try:
            return network_page(view, await view.nodes(), await view.routes(), await view.graph())
        except errors.Error as error:
            raise errors.Error(WEB_ID, 502, f"network node {view.source}: {error.detail}",
                               HTTPStatus(502).phrase) from None  # fmt: skip

    # -- POST /api/call --------------------------------------------------------------------

    async def _call(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if request.method != "POST":
            error = errors.method_not_allowed("use POST /api/call", id=WEB_ID)
            await respond_json(send, 405, error.to_dict(), [("allow", "POST")])
            return
        if not _same_origin(request):
            raise errors.forbidden("calls from another site are refused", id=WEB_ID)
        if request.media_type() != "application/json":
            detail = "POST /api/call takes application/json"
            raise errors.Error(WEB_ID, 415, detail, HTTPStatus(415).phrase)
        call = parse_call(await read_body(receive, request, self.limits))
        await respond_json(send, 200, await self._call_service(call))

    async def _call_service(self, call: CallRequest) -> Any:
        budget = min(call.timeout or self.limits.call_timeout, self.limits.call_timeout)
        try:
            with trio.fail_after(budget):
                return await self.client.call(call.service, call.endpoint, call.request,
                                              metadata=call.metadata, codec=JSON_CODEC)  # fmt: skip
        except trio.TooSlowError:
            raise errors.timeout(f"no reply within {budget:g} s", id=WEB_ID) from None

    # -- WS /ws/registry -------------------------------------------------------------------

    async def _websocket(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        try:
            check_head(request, self.limits)
            if self.apps is not None and self.apps.serves(request.path):
                await self.apps.websocket(request, receive, send)
                return
            if request.path != "/ws/registry":
                raise errors.not_found(f"no websocket at {request.path}", id=WEB_ID)
            if not _same_origin(request):
                raise errors.forbidden("websockets from another site are refused", id=WEB_ID)
            await self._live(receive, send)
        except errors.Error as error:
            await _deny(send, error)

    async def _live(self, receive: Receive, send: Send) -> None:
        """Subscribe first, then snapshot: a change between the two arrives as an event the
        page applies again, harmlessly, rather than being lost."""
        with self.feed.subscribe() as events:
            snapshot = services_json(await self._list())
            await send({"type": "websocket.accept"})
            await _send_json(send, {"type": "snapshot", "services": snapshot})
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope)
                async for event in events:
                    await _send_json(send, _event_message(event))
                # The feed cut us off (fell behind, or the watch broke): the page resyncs.
                await send({"type": "websocket.close", "code": 1012})
                nursery.cancel_scope.cancel()


async def _until_disconnect(receive: Receive, done: trio.CancelScope) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass  # the feed is one-way: whatever the page sends is ignored
    done.cancel()


async def _send_json(send: Send, data: Any) -> None:
    await send({"type": "websocket.send", "text": json_dumps(data).decode()})


async def _html(send: Send, page: str) -> None:
    await respond(send, 200, page.encode(), [("content-type", "text/html; charset=utf-8")])


async def _deny(send: Send, error: errors.Error) -> None:
    """Refuse a websocket before accepting it, as an HTTP error response."""
    code = error.code if 400 <= error.code <= 599 else 500
    data = json_dumps(error.to_dict())
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "websocket.http.response.start", "status": code, "headers": head})
    await send({"type": "websocket.http.response.body", "body": data})
