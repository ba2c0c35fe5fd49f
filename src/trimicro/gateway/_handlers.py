"""Path rules (pure) and the `rpc` and `api` handlers, plus `POST /rpc`.

Path → service and endpoint, go-micro's `api/resolver/micro` rules (docs/gateway.md has the
table). The namespace is prefixed to the service: `/greeter/say/hello` with namespace
`trimicro.api` calls `trimicro.api.greeter`, endpoint `Say.Hello`.

- A leading `v<N>` segment is a version: it joins the service name (`/v1/greeter/say/hello`
  → `v1.greeter`, `Say.Hello`) and the rules below apply to the rest.
- One segment `/foo` → service `foo`, endpoint `Foo.Call` (micro v3's rule: go-micro v1 made
  the endpoint `Foo`, which no service can declare).
- Two segments `/foo/bar` → service `foo`, endpoint `Foo.Bar`.
- Three or more: the last two name the endpoint, the rest (joined by dots) the service:
  `/foo/bar/baz/cat` → `foo.bar`, `Baz.Cat`.
- Segments become CamelCase at `-` (go-micro) and `_` (as `Service.handle` names methods):
  `/foo/bar/baz-xyz` → `Bar.BazXyz`.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import attrs
import trio

from ..codec import JSON as JSON_CODEC
from ..codec import CodecError, json_loads, structure, unstructure
from ..registry import RegistryError, ServiceRecord
from ..rpc import Client, errors
from . import api
from ._http import (
    GATEWAY_ID,
    HOP_BY_HOP,
    HttpRequest,
    Receive,
    Send,
    call_metadata,
    canonical,
    read_body,
    respond,
    respond_json,
)
from ._limits import HttpLimits

__all__ = [
    "Backend",
    "Route",
    "api_path",
    "proxy_route",
    "qualified",
    "rpc_endpoint",
    "rpc_path",
    "rpc_route",
    "web_route",
]

log = logging.getLogger("trimicro.gateway")

FORM = "application/x-www-form-urlencoded"

# -- path rules (pure) ---------------------------------------------------------------------

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_VERSION = re.compile(r"^v[0-9]+$")
#: A name the `http` and `web` handlers accept as a service (go-micro's proxy rule).
_ALIAS = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")


@attrs.frozen
class Route:
    """Where a path goes: `service` before the namespace is prefixed, and the endpoint."""

    service: str
    endpoint: str


def _segments(path: str) -> list[str] | None:
    """The path's segments as `path.Clean` would leave them; None for anything odd."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(not _SEGMENT.match(part) for part in parts):
        return None  # `..`, dots and other characters are not names
    return parts


def _camel(segment: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in re.split(r"[-_]", segment) if word)


def rpc_route(path: str) -> Route | None:
    """The service and endpoint for `path` under the rules above (None: no such route)."""
    parts = _segments(path)
    if not parts:
        return None
    version: list[str] = []
    if len(parts) > 1 and _VERSION.match(parts[0]):
        version, parts = parts[:1], parts[1:]
    if len(parts) == 1:
        names, method = parts, [parts[0], "call"]
    elif len(parts) == 2:
        names, method = parts[:1], parts
    else:
        names, method = parts[:-2], parts[-2:]
    return Route(".".join(version + names), ".".join(_camel(m) for m in method))


def proxy_route(path: str) -> str | None:
    """The service an `http`-handler path goes to: its first segment, or `v<N>.<second>`."""
    parts = path.split("/")[1:]
    if not parts:
        return None
    if len(parts) > 1 and _VERSION.match(parts[0]):
        alias, service = parts[1], f"{parts[0]}.{parts[1]}"
    else:
        alias = service = parts[0]
    return service if _ALIAS.match(alias) else None


def web_route(path: str) -> tuple[str, str] | None:
    """`/<name>/rest` → (`name`, `/rest`): the web app's name and the path it is served."""
    name, _, rest = path.lstrip("/").partition("/")
    if not _ALIAS.match(name):
        return None
    return name, f"/{rest}"


def qualified(namespace: str, name: str) -> str:
    return f"{namespace}.{name}" if namespace else name


# -- the services behind the gateway -------------------------------------------------------

Lookup = Callable[[str], Awaitable[list[ServiceRecord]]]


@attrs.define
class Backend:
    """What every handler needs: the client, registry lookups, the namespace and limits."""

    client: Client
    lookup: Lookup
    namespace: str
    limits: HttpLimits = attrs.field(factory=HttpLimits)
    rng: random.Random = attrs.field(factory=random.Random)

    async def records(self, service: str, *, for_call: bool = False) -> list[ServiceRecord]:
        """The service's records; 404 when nothing serves it (a path naming no service is a
        missing resource, not an outage), 503 when the registry cannot be asked. `for_call`
        with a proxy (`TRIMICRO_PROXY`): a service this site does not know may live behind
        it (another site), so none found is `[]` (no schema) and the call goes on."""
        try:
            records = await self.lookup(service)
        except RegistryError as exc:
            if for_call and self.client.proxy is not None:
                return []
            raise errors.unavailable(f"registry: {exc}", id=GATEWAY_ID) from None
        if not any(record.nodes for record in records):
            if for_call and self.client.proxy is not None:
                return []
            raise errors.not_found(f"service {service} not found", id=GATEWAY_ID)
        return records

    async def call(
        self, service: str, endpoint: str, payload: Any, metadata: dict[str, str]
    ) -> Any:
        """One call within the gateway's call budget (its deadline travels to the service)."""
        try:
            with trio.fail_after(self.limits.call_timeout):
                return await self.client.call(
                    service, endpoint, payload, metadata=metadata, codec=JSON_CODEC
                )
        except trio.TooSlowError:
            detail = f"{service} {endpoint}: no reply within {self.limits.call_timeout:g} s"
            raise errors.timeout(detail, id=GATEWAY_ID) from None

    def node_address(self, records: list[ServiceRecord]) -> str:
        """A node of the service, at random (the HTTP handlers' load balancing)."""
        nodes = [node for record in records for node in record.nodes]
        return self.rng.choice(nodes).address


# -- request payloads ----------------------------------------------------------------------


def request_schema(records: list[ServiceRecord], endpoint: str) -> dict[str, Any]:
    """The published request schema of `endpoint` ({} when none is published)."""
    for record in records:
        for published in record.endpoints:
            if published.name == endpoint and isinstance(published.request, dict):
                return published.request
    return {}


def _coerce(value: str, schema: Any) -> Any:
    """A query value as the schema's scalar type, left as text when it does not parse (the
    service then names the field in its 400)."""
    if not isinstance(schema, dict):
        return value
    options = [s for s in schema.get("anyOf", [schema]) if isinstance(s, dict)]
    kind = next((s.get("type") for s in options if s.get("type") not in (None, "null")), None)
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _field(values: list[str], schema: Any) -> Any:
    if isinstance(schema, dict) and schema.get("type") == "array":
        return [_coerce(v, schema.get("items")) for v in values]
    return _coerce(values[0], schema) if len(values) == 1 else values


def fields_object(items: list[tuple[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
    """Query or form fields as a request object: one value → scalar, repeated → list,
    typed by the endpoint's published schema where it has one."""
    properties = schema.get("properties", {})
    others = schema.get("additionalProperties")  # dict[str, T] requests
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    return {name: _field(values, properties.get(name, others)) for name, values in grouped.items()}


def _json_body(body: bytes) -> Any:
    try:
        return json_loads(body)
    except CodecError as exc:
        raise errors.bad_request(f"body: {exc}", id=GATEWAY_ID) from None


def rpc_payload(request: HttpRequest, body: bytes, schema: dict[str, Any]) -> Any:
    """The `rpc` handler's request: the JSON (or form) body, else the query parameters."""
    if body:
        if request.media_type() == FORM:
            return fields_object(_form_fields(body), schema)
        return _json_body(body)
    return fields_object(request.query(), schema)


def _form_fields(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise errors.bad_request("form body is not UTF-8", id=GATEWAY_ID) from None


# -- the handlers --------------------------------------------------------------------------


def _route_of(backend: Backend, request: HttpRequest) -> tuple[str, str]:
    route = rpc_route(request.path)
    if route is None:
        raise errors.not_found(f"no service for path {request.path}", id=GATEWAY_ID)
    return qualified(backend.namespace, route.service), route.endpoint


async def rpc_path(backend: Backend, request: HttpRequest, receive: Receive, send: Send) -> None:
    """`rpc` handler: path → service and endpoint, JSON body (or query) → request."""
    service, endpoint = _route_of(backend, request)
    records = await backend.records(service, for_call=True)
    body = await read_body(receive, request, backend.limits)
    payload = rpc_payload(request, body, request_schema(records, endpoint))
    reply = await backend.call(service, endpoint, payload, call_metadata(request))
    await respond_json(send, 200, reply)


def api_request(request: HttpRequest, body: bytes) -> api.Request:
    """The `api.Request` for an HTTP request (form bodies go to `post`, others to `body`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        detail = "the api handler takes text bodies only (binary bodies: the http handler)"
        raise errors.bad_request(detail, id=GATEWAY_ID) from None
    form = request.media_type() == FORM
    return api.Request(
        method=request.method,
        path=request.path,
        header=api.pairs((canonical(k), v) for k, v in request.headers),
        get=api.pairs(request.query()),
        post=api.pairs(parse_qsl(text, keep_blank_values=True)) if form else {},
        body="" if form else text,
        url=request.url,
    )


def api_response(reply: Any, service: str) -> api.Response:
    """The service's reply as an `api.Response`; 502 when it is not one."""
    try:
        response: api.Response = structure(reply, api.Response, for_json=True)
    except CodecError as exc:
        raise _bad_gateway(f"{service} answered no api.Response: {exc}") from None
    if response.status_code == 0:
        return attrs.evolve(response, status_code=200)  # go-micro's default
    if not 100 <= response.status_code <= 599:
        raise _bad_gateway(f"{service} answered status {response.status_code}")
    return response


def _bad_gateway(detail: str) -> errors.Error:
    return errors.Error(GATEWAY_ID, 502, detail, "Bad Gateway")


def _response_headers(response: api.Response) -> list[tuple[str, str]]:
    skip = HOP_BY_HOP | {"content-length"}
    return [(pair.key or name, value) for name, pair in response.header.items()
            if (pair.key or name).lower() not in skip for value in pair.values]  # fmt: skip


async def api_path(backend: Backend, request: HttpRequest, receive: Receive, send: Send) -> None:
    """`api` handler: path → API service and endpoint, which gets an `api.Request`."""
    service, endpoint = _route_of(backend, request)
    await backend.records(service, for_call=True)
    body = await read_body(receive, request, backend.limits)
    payload = unstructure(api_request(request, body), for_json=True)
    reply = await backend.call(service, endpoint, payload, call_metadata(request))
    response = api_response(reply, service)
    await respond(send, response.status_code, response.body.encode(), _response_headers(response))


# -- POST /rpc -----------------------------------------------------------------------------


@attrs.frozen
class RpcRequest:
    """The body of `POST /rpc`."""

    service: str
    endpoint: str
    request: Any = None
    metadata: dict[str, str] = attrs.field(factory=dict)


def _text_field(data: dict[str, Any], *names: str) -> str:
    value = next((data[n] for n in names if n in data), None)
    if not isinstance(value, str) or not value:
        raise errors.bad_request(f'"{names[0]}" must be a non-empty string', id=GATEWAY_ID)
    return value


def _metadata_field(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise errors.bad_request('"metadata" must be an object of strings', id=GATEWAY_ID)
    return value


def rpc_request(request: HttpRequest, body: bytes) -> RpcRequest:
    """Parse a `/rpc` body: JSON `{"service", "endpoint", "request", "metadata"?}`, or a form
    whose `request` is JSON text (go-micro's `curl -d service=... -d method=...`)."""
    if request.media_type() == FORM:
        data: Any = dict(_form_fields(body))
        if "request" in data:
            data["request"] = _json_body(data["request"].encode())
    else:
        data = _json_body(body) if body else None
    if not isinstance(data, dict):
        raise errors.bad_request('body must be a JSON object {"service", "endpoint", ...}',
                                 id=GATEWAY_ID)  # fmt: skip
    return RpcRequest(
        service=_text_field(data, "service"),
        endpoint=_text_field(data, "endpoint", "method"),
        request=data.get("request"),
        metadata=_metadata_field(data.get("metadata")),
    )


async def rpc_endpoint(
    backend: Backend, request: HttpRequest, receive: Receive, send: Send
) -> None:
    """`POST /rpc`: call any service by name. An unknown service is the client's 503 (the
    caller named it; it may be restarting), unlike a path that names nothing (404)."""
    if request.method != "POST":
        error = errors.method_not_allowed("use POST /rpc", id=GATEWAY_ID)
        await respond_json(send, 405, error.to_dict(), [("allow", "POST")])
        return
    call = rpc_request(request, await read_body(receive, request, backend.limits))
    metadata = {**call_metadata(request), **call.metadata}
    reply = await backend.call(call.service, call.endpoint, call.request, metadata)
    await respond_json(send, 200, reply)
