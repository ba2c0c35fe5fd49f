"""Small ASGI helpers: the request as a value, responses, bounded body reads, header rules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import attrs
import trio

from ..codec import json_dumps
from ..rpc import errors
from ._limits import HttpLimits

__all__ = [
    "GATEWAY_ID",
    "HOP_BY_HOP",
    "ClientGone",
    "HttpRequest",
    "Receive",
    "Responder",
    "Scope",
    "Send",
    "body_chunks",
    "call_metadata",
    "canonical",
    "check_head",
    "read_body",
    "respond",
    "respond_error",
    "respond_json",
]

Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The `id` of errors the gateway itself answers with.
GATEWAY_ID = "trimicro.gateway"

#: Headers that describe one connection, never forwarded by a proxy (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

#: Headers passed to services as call metadata besides every `X-*` header: credentials,
#: trace context and the client's language.
_METADATA_HEADERS = frozenset(
    {"authorization", "accept-language", "traceparent", "tracestate", "baggage"}
)


@attrs.frozen
class HttpRequest:
    """An ASGI request's head: names lowercased, values decoded as latin-1 (as HTTP says)."""

    method: str
    path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]
    scheme: str
    client: str

    @classmethod
    def from_scope(cls, scope: Scope) -> HttpRequest:
        client = scope.get("client") or ("", 0)
        return cls(
            method=scope.get("method", "GET"),
            path=scope["path"],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=tuple(
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            ),
            scheme=scope.get("scheme", "http"),
            client=str(client[0]),
        )

    def head_size(self) -> int:
        """Bytes of the request head, near enough: request line and header lines."""
        line = len(self.method) + len(self.path) + len(self.query_string) + 12
        return line + sum(len(k) + len(v) + 4 for k, v in self.headers)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (lowercase)."""
        return next((v for k, v in self.headers if k == name), default)

    @property
    def host(self) -> str:
        return self.header("host") or ""

    @property
    def url(self) -> str:
        query = f"?{self.query_string}" if self.query_string else ""
        return f"{self.scheme}://{self.host}{self.path}{query}"

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)

    def media_type(self) -> str:
        """The `Content-Type` without parameters, lowercased ("" when absent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()


def canonical(name: str) -> str:
    """`x-user-id` → `X-User-Id` (the form go-micro gives header names)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def call_metadata(request: HttpRequest) -> dict[str, str]:
    """The headers that travel to services as call metadata (repeated ones joined by ", "),
    plus who the client was."""
    metadata: dict[str, str] = {}
    for name, value in request.headers:
        if name.startswith("x-") or name in _METADATA_HEADERS:
            key = canonical(name)
            metadata[key] = f"{metadata[key]}, {value}" if key in metadata else value
    forwarded = metadata.get("X-Forwarded-For")
    metadata["X-Forwarded-For"] = f"{forwarded}, {request.client}" if forwarded else request.client
    return metadata


# -- responses -----------------------------------------------------------------------------


def _encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def respond(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Send a whole response; `Content-Length` is set here."""
    all_headers = [*headers, ("content-length", str(len(body)))]
    await send(
        {"type": "http.response.start", "status": status, "headers": _encode_headers(all_headers)}
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, data: Any, headers: Iterable[tuple[str, str]] = ()
) -> None:
    await respond(send, status, json_dumps(data), [("content-type", "application/json"), *headers])


def _status_of(error: errors.Error) -> int:
    return error.code if 400 <= error.code <= 599 else 500


async def respond_error(
    send: Send, error: errors.Error, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """The error JSON with the error's own HTTP status (500 when it has no usable one)."""
    await respond_json(send, _status_of(error), error.to_dict(), headers)


# -- request bodies ------------------------------------------------------------------------

_DIGITS = re.compile(r"^[0-9]{1,19}$")


def _declared_length(request: HttpRequest, limits: HttpLimits) -> int | None:
    """The `Content-Length`, refused up front when it is over the cap."""
    value = request.header("content-length")
    if value is None:
        return None
    if not _DIGITS.match(value.strip()):
        raise errors.bad_request(f"invalid Content-Length {value!r}", id=GATEWAY_ID)
    length = int(value)
    if length > limits.max_body_bytes:
        raise _too_large(limits)
    return length


def check_head(request: HttpRequest, limits: HttpLimits) -> None:
    """431 for a head over the cap. h11 refuses a head that grows past it while incomplete;
    one that arrives whole in a single read is only seen here."""
    if request.head_size() > limits.max_header_bytes:
        detail = f"request head over {limits.max_header_bytes} bytes"
        raise errors.Error(GATEWAY_ID, 431, detail, HTTPStatus(431).phrase)


def _too_large(limits: HttpLimits) -> errors.Error:
    detail = f"request body over {limits.max_body_bytes} bytes"
    return errors.Error(GATEWAY_ID, 413, detail, HTTPStatus(413).phrase)


async def body_chunks(
    receive: Receive, request: HttpRequest, limits: HttpLimits
) -> AsyncIterator[bytes]:
    """The body as it arrives, with the size cap (413) and the whole-body deadline (408)."""
    _declared_length(request, limits)
    deadline = trio.current_time() + limits.body_timeout
    seen = 0
    more = True
    while more:
        with trio.move_on_at(deadline) as scope:
            message = await receive()
        if scope.cancelled_caught:
            raise errors.timeout(
                f"body not received within {limits.body_timeout:g} s", id=GATEWAY_ID
            )
        if message["type"] != "http.request":
            raise ClientGone
        chunk, more = message.get("body", b""), message.get("more_body", False)
        seen += len(chunk)
        if seen > limits.max_body_bytes:
            raise _too_large(limits)
        if chunk:
            yield chunk


class ClientGone(Exception):
    """The client disconnected mid-body: there is nobody to answer."""


class Responder:
    """Wraps ASGI `send`: adds `extra` headers (CORS, security) to the response head,
    remembers whether the head went out (after it, an error can only cut the response
    short), and turns a vanished client into `ClientGone`."""

    def __init__(self, send: Send, extra: Iterable[tuple[str, str]] = ()) -> None:
        self._send = send
        self.raw = send  # the `send` it wraps (for a response that must not get `extra`)
        self._extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if self._extra:
                message = {**message, "headers": [*message.get("headers", []), *self._extra]}
        try:
            await self._send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            # The connection is going or gone (hypercorn closing it under us counts too).
            raise ClientGone from None


async def read_body(receive: Receive, request: HttpRequest, limits: HttpLimits) -> bytes:
    """The whole body (bounded as in `body_chunks`)."""
    return b"".join([chunk async for chunk in body_chunks(receive, request, limits)])
