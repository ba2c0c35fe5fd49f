"""Endpoints: a name, an async function, and the types its type hints declare."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

__all__ = ["Handler", "endpoint_name", "handler_from_function"]

HandlerFn = Callable[..., Awaitable[Any]]


@attrs.frozen
class Handler:
    """One endpoint. `request_type` structures incoming bodies (None: plain data)."""

    name: str
    fn: HandlerFn
    request_type: Any = None
    response_type: Any = None
    stream: bool = False
    #: Type of the messages a stream handler receives (from its `Stream[T]` hint).
    stream_type: Any = None
    idempotent: bool = False
    metadata: dict[str, str] = attrs.field(factory=dict)


def _camel(name: str) -> str:
    """`say_hello` → `SayHello`, `hello` → `Hello` (go-micro's method names)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def endpoint_name(cls_name: str, method: str) -> str:
    """`Say` + `hello` → `Say.Hello`."""
    return f"{cls_name}.{_camel(method)}"


_ENDPOINT_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


def _hints(fn: HandlerFn) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: treat as untyped, plain data
        return {}


def _none_to_any(hint: Any) -> Any:
    return None if hint is type(None) else hint


def _stream_item_type(hint: Any) -> Any:
    """`Stream[Number]` → `Number` (None when unparameterised)."""
    args = typing.get_args(hint)
    return _none_to_any(args[0]) if args else None


def handler_from_function(
    name: str, fn: HandlerFn, *, stream: bool = False, idempotent: bool = False
) -> Handler:
    """Build a `Handler`, reading the request and response types from `fn`'s hints.

    Unary handlers are `async def f(req) -> Resp`; stream handlers `async def f(req, stream)`.
    """
    if not _ENDPOINT_RE.match(name):
        raise ValueError(f"endpoint name {name!r} must look like 'Service.Method'")
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"handler for {name!r} must be an async function")
    params = list(inspect.signature(fn).parameters.values())
    expected = 2 if stream else 1
    if len(params) != expected:
        shape = "(request, stream)" if stream else "(request)"
        raise TypeError(f"handler for {name!r} must take {shape}, got {len(params)} parameters")
    hints = _hints(fn)
    response = hints.get("return")
    request_type = _none_to_any(hints.get(params[0].name))
    stream_type = _stream_item_type(hints.get(params[1].name)) if stream else None
    return Handler(
        name=name,
        fn=fn,
        request_type=request_type,
        response_type=_none_to_any(response),
        stream=stream,
        stream_type=stream_type if stream_type is not None else request_type,
        idempotent=idempotent,
    )
