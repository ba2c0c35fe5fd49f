"""What a handler can ask about the call it serves: `current_call()` and `current_client()`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..session import Metadata

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Call", "Metadata", "current_call", "current_client", "current_service_name"]


@attrs.frozen
class Call:
    """The call being served: who asked for what, with which metadata and deadline."""

    service: str
    endpoint: str
    metadata: Metadata
    peer: str
    #: Absolute trio time at which the caller gives up (`inf` when none).
    deadline: float = math.inf

    def remaining(self) -> float:
        """Seconds left in the caller's budget (`inf` when none)."""
        return max(0.0, self.deadline - trio.current_time())


_current_call: ContextVar[Call | None] = ContextVar("trimicro_call", default=None)
_current_client: ContextVar[Client | None] = ContextVar("trimicro_client", default=None)
_current_service: ContextVar[str] = ContextVar("trimicro_service", default="")


def current_call() -> Call:
    """The call the current handler serves; `RuntimeError` outside a handler."""
    call = _current_call.get()
    if call is None:
        raise RuntimeError("current_call() is only available inside a handler")
    return call


def current_client() -> Client:
    """The serving service's own client (inside a handler), for calls to other services."""
    client = _current_client.get()
    if client is None:
        raise RuntimeError("current_client() is only available inside a service's handler")
    return client


def current_service_name() -> str:
    """The name of the service whose handler is running ("" outside one)."""
    return _current_service.get()


@contextmanager
def using_client(client: Client) -> Iterator[None]:
    """Make `client` what `current_client()` returns (subscriber handlers use this)."""
    token = _current_client.set(client)
    try:
        yield
    finally:
        _current_client.reset(token)


@contextmanager
def serving(call: Call, service: str, client: Client | None) -> Iterator[None]:
    """Set the call context for the duration of a handler."""
    tokens: list[Any] = [
        (_current_call, _current_call.set(call)),
        (_current_service, _current_service.set(service)),
        (_current_client, _current_client.set(client)),
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
