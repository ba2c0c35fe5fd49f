"""Wrappers: middleware for client calls, handlers and subscribers, as plain async callables.

One shape serves all three places, so a wrapper written once (tracing, metrics, auth) works on
either side::

    async def log_calls(call: trimicro.WrappedCall, proceed: trimicro.Proceed) -> object:
        started = trio.current_time()
        try:
            return await proceed()
        finally:
            print(call.kind, call.service, call.endpoint, trio.current_time() - started)

Wrappers compose in order: the first in the list is the outermost. `call.metadata` is mutable on
the client side (what you set is sent), read-only elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal

import attrs

__all__ = ["Proceed", "WrappedCall", "Wrapper", "compose"]

Kind = Literal["client", "handler", "subscriber"]
Proceed = Callable[[], Awaitable[Any]]


@attrs.define
class WrappedCall:
    """What a wrapper sees: which side, which service and endpoint (or topic), and metadata."""

    kind: Kind
    service: str
    endpoint: str
    metadata: MutableMapping[str, str]


Wrapper = Callable[[WrappedCall, Proceed], Awaitable[Any]]


def compose(wrappers: Sequence[Wrapper], call: WrappedCall, innermost: Proceed) -> Proceed:
    """A `proceed` that runs `wrappers` around `innermost`, the first outermost."""
    proceed = innermost
    for wrapper in reversed(wrappers):
        proceed = _bind(wrapper, call, proceed)
    return proceed


def _bind(wrapper: Wrapper, call: WrappedCall, proceed: Proceed) -> Proceed:
    async def bound() -> Any:
        return await wrapper(call, proceed)

    return bound
