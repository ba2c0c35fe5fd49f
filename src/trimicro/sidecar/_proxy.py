"""Calls to the app: each trimicro call of an endpoint becomes `POST http://app/<path>`.

The sidecar serves the app's name on the trimicro transport with one handler per declared
endpoint. A handler sends the request as the JSON body, the call's `X-*` and credential
metadata as headers, and maps the answer back:

| the app answers | the caller gets |
|---|---|
| 2xx with a JSON body (or none: `null`) | the reply |
| 2xx that is not JSON | 502 Bad Gateway |
| 4xx / 5xx | an error with that code; `detail` from a JSON error body, else the text |
| 1xx / 3xx (redirects are not followed) | 502 Bad Gateway |
| nothing: connection refused | 503 Service Unavailable (nothing ran, safe to retry) |
| nothing: the connection broke after the request went out | 502 Bad Gateway |

The call's deadline bounds the HTTP exchange: the server runs the handler under the caller's
remaining budget, and httpx honours trio's cancellation.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import attrs
import httpx

from ..codec import CodecError, json_dumps, json_loads
from ..rpc import current_call, errors

__all__ = ["AppEndpoint", "AppProxy", "endpoint_path", "parse_endpoint"]

#: Metadata that travels to the app as headers besides every `X-*` key (as the gateway
#: passes these headers on as metadata).
_HEADER_KEYS = frozenset({"authorization", "accept-language", "traceparent", "tracestate"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENDPOINT = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: How much of a non-JSON error body becomes the error's detail.
MAX_DETAIL = 500


def endpoint_path(endpoint: str) -> str:
    """The default path of an endpoint, the gateway's path rule backwards: `Say.Hello` →
    `/say/hello`, `Greeter.SayHello` → `/greeter/say-hello`."""
    return "/" + "/".join(_WORD_BREAK.sub("-", part).lower() for part in endpoint.split("."))


@attrs.frozen
class AppEndpoint:
    """An endpoint the app answers, and the path it answers it on."""

    name: str
    path: str


def parse_endpoint(spec: str) -> AppEndpoint:
    """`Say.Hello` or `Say.Hello=/hello`; ValueError naming what is wrong."""
    name, sep, path = spec.partition("=")
    name = name.strip()
    if not _ENDPOINT.match(name):
        raise ValueError(f"endpoint {name!r} must look like Service.Method")
    if not sep:
        return AppEndpoint(name, endpoint_path(name))
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ValueError(f"path {path!r} of endpoint {name} must start with / (no spaces)")
    return AppEndpoint(name, path)


Handler = Callable[[Any], Awaitable[Any]]


class AppProxy:
    """Turns calls for `name` into HTTP requests to the app at `base_url`."""

    def __init__(self, name: str, base_url: str, http: httpx.AsyncClient) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = http

    def handler(self, endpoint: AppEndpoint) -> Handler:
        """The trimicro handler of `endpoint` (request and reply are plain JSON data)."""

        async def proxied(request: Any) -> Any:
            return await self.post(endpoint.path, request, _headers(current_call().metadata))

        proxied.__name__ = f"proxy_{endpoint.name.replace('.', '_')}"
        return proxied

    async def any_endpoint(self, endpoint: str, request: Any) -> Any:
        """An endpoint nobody declared: POST to its default path (`Say.Hello` → /say/hello)."""
        return await self.post(endpoint_path(endpoint), request, _headers(current_call().metadata))

    async def post(self, path: str, request: Any, headers: dict[str, str]) -> Any:
        """POST `request` as JSON to `path`; the reply, or the answer as an `errors.Error`."""
        try:
            body = json_dumps(request)
        except CodecError as exc:
            raise errors.bad_request(f"request is not JSON-able: {exc}", id=self.name) from None
        headers = {**headers, "content-type": "application/json", "accept": "application/json"}
        try:
            response = await self.http.post(self.base_url + path, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise errors.unavailable(f"{self.name} is not reachable: {exc}", id=self.name) from None
        except httpx.HTTPError as exc:
            raise _bad_gateway(self.name, f"{self.name} did not answer: {exc!r}") from None
        return self._reply(response)

    def _reply(self, response: httpx.Response) -> Any:
        status = response.status_code
        if 200 <= status <= 299:
            if not response.content:
                return None
            try:
                return json_loads(response.content)
            except CodecError as exc:
                raise _bad_gateway(self.name, f"{self.name} answered non-JSON: {exc}") from None
        if 400 <= status <= 599:
            raise errors.Error(self.name, status, _detail(response), _phrase(status))
        raise _bad_gateway(self.name, f"{self.name} answered HTTP {status}")


def _headers(metadata: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in metadata.items():
        lower = key.lower()
        wanted = lower.startswith("x-") or lower in _HEADER_KEYS
        if wanted and _TOKEN.match(key) and value.isprintable():
            headers[lower] = value
    return headers


def _detail(response: httpx.Response) -> str:
    """An error body's `detail` (trimicro/go-micro error JSON), else its text, cut short."""
    try:
        data = json_loads(response.content) if response.content else None
    except CodecError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    text = response.content.decode("utf-8", "replace").strip()
    return text[:MAX_DETAIL] or _phrase(response.status_code)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _bad_gateway(name: str, detail: str) -> errors.Error:
    return errors.Error(name, 502, detail, "Bad Gateway")
