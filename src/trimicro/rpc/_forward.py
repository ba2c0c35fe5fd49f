"""Forwarding calls for other services, as a proxy does: bodies pass through undecoded.

A server with a `Forwarder` serves its own endpoints and forwards every request addressed to
another service. The forwarded call runs under the caller's remaining budget (the server's
cancel scope for the call), so a deadline or a cancel at the caller reaches the backend
through every hop. Streams are pumped message by message both ways, with credit flow control
on each hop. A hop counter in the metadata stops forwarding loops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import attrs
import trio

from . import errors
from ._envelope import Request, Response
from ._stream import Stream

if TYPE_CHECKING:
    from ._client import Client

__all__ = [
    "HOPS",
    "MAX_HOPS",
    "PROXY_ENDPOINTS",
    "PUBLISH_ENDPOINT",
    "Forwarder",
    "PublishRequest",
    "Routes",
]

#: Metadata key counting the proxies a request went through.
HOPS = "trimicro-hops"
MAX_HOPS = 8

#: A forwarding server answers endpoints in this namespace itself, whatever service the
#: request names (a client that reaches a proxy by address does not know its name).
PROXY_ENDPOINTS = "Proxy."
PUBLISH_ENDPOINT = "Proxy.Publish"


@attrs.frozen
class PublishRequest:
    """A message a client publishes through a proxy. `id` (unique per message) and `path`
    (the proxies it went through) let a network of proxies deliver it once, without loops."""

    topic: str
    body: bytes
    content_type: str = "application/cbor"
    metadata: dict[str, str] = attrs.field(factory=dict)
    id: str = ""
    path: list[str] = attrs.field(factory=list)


#: Addresses to try for a service, best first (a router's lookup); `None` entries mean "the
#: client's own selection over the registry".
Routes = Callable[[str], Awaitable[Sequence[str | None]]]


async def _registry_only(service: str) -> Sequence[str | None]:
    return [None]


class Forwarder:
    """Forwards raw requests through `client`, trying `routes(service)` in order.

    Only "could not reach" (503) moves on to the next route: an answer from a backend, error
    or not, is the answer, and a handler that may have run is never run twice.
    """

    def __init__(
        self, client: Client, routes: Routes | None = None, *, max_hops: int = MAX_HOPS
    ) -> None:
        self.client = client
        self.routes = routes or _registry_only
        self.max_hops = max_hops
        self.forwarded = 0

    def _next_hop(self, request: Request, proxy: str) -> Request:
        raw = request.metadata.get(HOPS, "0")
        if not raw.isdigit():
            raise errors.bad_request(f"metadata {HOPS} must be a number, got {raw!r}", id=proxy)
        hops = int(raw)
        if hops >= self.max_hops:
            raise errors.Error(
                proxy, 508, f"{request.service}: forwarded {hops} times (a loop?)", "Loop Detected"
            )
        self.forwarded += 1
        return attrs.evolve(request, metadata={**request.metadata, HOPS: str(hops + 1)})

    async def _targets(self, service: str, proxy: str) -> Sequence[str | None]:
        targets = await self.routes(service)
        if not targets:
            raise errors.unavailable(f"no route to service {service}", id=proxy)
        return targets

    async def unary(self, request: Request, proxy: str) -> Response:
        """Forward a unary call; the reply comes back as the backend sent it."""
        wire = self._next_hop(request, proxy)
        last: errors.Error | None = None
        for address in await self._targets(request.service, proxy):
            try:
                return await self.client.forward(wire, address=address)
            except errors.Error as exc:
                if exc.code != 503:
                    raise
                last = exc
        assert last is not None
        raise last

    async def stream(self, request: Request, downstream: Stream[bytes], proxy: str) -> None:
        """Forward a streaming call: pump both ways until the backend ends it."""
        wire = self._next_hop(request, proxy)
        async with AsyncExitStack() as stack:
            upstream = await self._open(stack, wire, proxy)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump_to_backend, downstream, upstream)
                async for body in upstream:
                    await downstream.send(body)
                # The backend finished: the call is over, whatever the caller still sends.
                nursery.cancel_scope.cancel()

    async def _open(self, stack: AsyncExitStack, wire: Request, proxy: str) -> Stream[bytes]:
        last: errors.Error | None = None
        for address in await self._targets(wire.service, proxy):
            try:
                return await stack.enter_async_context(
                    self.client.forward_stream(wire, address=address)
                )
            except errors.Error as exc:
                if exc.code != 503:
                    raise
                last = exc
        assert last is not None
        raise last


async def _pump_to_backend(downstream: Stream[bytes], upstream: Stream[bytes]) -> None:
    async for body in downstream:
        await upstream.send(body)
    await upstream.close_send()
