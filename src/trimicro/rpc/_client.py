"""The RPC client: `call` and `stream` to services found in the registry.

The caller's trio deadline travels on the wire as a remaining budget; cancelling the caller
(its scope, its deadline) sends a `Cancel` frame so the callee's handler is cancelled too.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from ..broker import Broker
from ..codec import CBOR, Codec
from ..nursery import remaining_budget_ns
from ..registry import Node, ServiceCache
from ..session import ConnectError, ConnectionClosed, SessionError, Transport
from . import errors
from ._context import _current_call
from ._envelope import Cancel, Envelope, ErrorFrame, Request, Response
from ._peer import Peer
from ._stream import CallState, Stream

__all__ = ["Client", "TransportFor"]

T = TypeVar("T")
CLIENT_ID = "trimicro.client"

#: How long a cancelled caller waits to tell the callee (the frame is small; the peer may be gone).
CANCEL_SEND_TIMEOUT = 1.0


class TransportFor:
    """Maps a node's `transport` metadata to a `Transport` instance."""

    def __init__(self, default: Transport, others: Mapping[str, Transport] | None = None) -> None:
        self.default = default
        self._by_scheme = {default.scheme: default, **(others or {})}

    def __call__(self, scheme: str | None) -> Transport:
        if scheme is None:
            return self.default
        transport = self._by_scheme.get(scheme)
        if transport is None:
            from ..session import load_transport

            transport = self._by_scheme[scheme] = load_transport(f"{scheme}://")
        return transport


def _split_address(address: str) -> tuple[str | None, str]:
    scheme, sep, rest = address.partition("://")
    return (scheme, rest) if sep else (None, address)


class Client:
    """Calls services. Create with `trimicro.open_client()` (or use a service's own client)."""

    def __init__(
        self,
        nursery: trio.Nursery,
        cache: ServiceCache,
        transports: TransportFor,
        *,
        retries: int = 1,
        rng: random.Random | None = None,
        broker: Broker | None = None,
    ) -> None:
        self._broker = broker
        self._nursery = nursery
        self._cache = cache
        self._transports = transports
        self._retries = retries
        self._rng = rng or random.Random()
        self._peers: dict[tuple[str, str], Peer] = {}
        self._connecting: dict[tuple[str, str], trio.Lock] = {}

    # -- selection and connections -------------------------------------------------------

    async def _nodes(self, service: str) -> list[Node]:
        records = await self._cache.get_service(service)
        nodes = [node for record in records for node in record.nodes]
        if not nodes:
            raise errors.unavailable(f"service {service}: no nodes found", id=CLIENT_ID)
        return nodes

    async def _peer(self, scheme: str | None, address: str) -> Peer:
        transport = self._transports(scheme)
        key = (transport.scheme, address)
        peer = self._peers.get(key)
        if peer is not None and not peer.closed:
            return peer
        lock = self._connecting.setdefault(key, trio.Lock())
        async with lock:
            peer = self._peers.get(key)
            if peer is None or peer.closed:
                conn = await transport.connect(self._nursery, address)
                peer = self._peers[key] = Peer(conn, address)
                self._nursery.start_soon(peer.run_reader)
        return peer

    async def _targets(self, service: str, address: str | None) -> list[tuple[str | None, str]]:
        if address is not None:
            return [_split_address(address)]
        nodes = await self._nodes(service)
        self._rng.shuffle(nodes)
        return [(node.metadata.get("transport"), node.address) for node in nodes]

    async def _open(
        self, service: str, address: str | None, request: Request
    ) -> tuple[Peer, CallState]:
        """Send `request` to a node, trying others when a connection cannot be made."""
        targets = await self._targets(service, address)
        last: SessionError | None = None
        for scheme, target in targets[: self._retries + 1]:
            try:
                peer = await self._peer(scheme, target)
                state = peer.open_call()
                await peer.send(attrs.evolve(request, call=state.call_id))
                return peer, state
            except (ConnectError, ConnectionClosed) as exc:
                last = exc
        raise errors.unavailable(f"service {service}: {last}", id=CLIENT_ID)

    # -- public API ------------------------------------------------------------------------

    def _request(
        self,
        service: str,
        endpoint: str,
        body: bytes | None,
        metadata: Mapping[str, str] | None,
        codec: Codec,
        stream: bool,
    ) -> Request:
        return Request(
            call=0,
            service=service,
            endpoint=endpoint,
            metadata=_outgoing_metadata(metadata),
            budget=remaining_budget_ns(),
            ct=codec.content_type,
            stream=stream,
            body=body,
        )

    async def call(
        self,
        service: str,
        endpoint: str,
        request: object = None,
        *,
        response: type[T] | None = None,
        metadata: Mapping[str, str] | None = None,
        address: str | None = None,
        codec: Codec = CBOR,
    ) -> T | Any:
        """Call `service`'s `endpoint` and return its reply (structured into `response`).

        Raises `trimicro.errors.Error` when the remote side (or the client) answers an error;
        the caller's own deadline raises trio's usual exceptions.
        """
        wire = self._request(service, endpoint, codec.encode(request), metadata, codec, False)
        peer, state = await self._open(service, address, wire)
        try:
            reply = await _receive(state, service)
        except BaseException:
            await _cancel_remote(peer, state)
            raise
        finally:
            peer.end_call(state)
        if isinstance(reply, Response):
            return codec.decode(reply.body, response)
        raise _error_from(reply, service)

    @asynccontextmanager
    async def stream(
        self,
        service: str,
        endpoint: str,
        request: object = None,
        *,
        response: type[T] | None = None,
        metadata: Mapping[str, str] | None = None,
        address: str | None = None,
        codec: Codec = CBOR,
    ) -> AsyncIterator[Stream[T]]:
        """Open a streaming call; `request` (if any) is the first message to the server."""
        body = None if request is None else codec.encode(request)
        wire = self._request(service, endpoint, body, metadata, codec, True)
        peer, state = await self._open(service, address, wire)

        async def send_frame(envelope: Envelope) -> None:
            await peer.send(envelope)

        stream: Stream[T] = Stream(state, send_frame, codec, response)
        try:
            yield stream
        finally:
            # Leaving before the server finished (an error, a cancel, or just `break`) cancels
            # the remote handler.
            if not stream.receive_closed:
                await _cancel_remote(peer, state)
            peer.end_call(state)

    async def publish(
        self,
        topic: str,
        message: object,
        *,
        metadata: Mapping[str, str] | None = None,
        codec: Codec = CBOR,
    ) -> None:
        """Publish `message` (an attrs instance or plain data) to `topic` through the broker.

        Returns once the broker took responsibility for it (docs/broker.md says what that means
        for each broker); waits while subscribers are behind rather than dropping.
        """
        if self._broker is None:
            raise RuntimeError("this client has no broker: open it with a broker URL")
        body = codec.encode(message)
        await self._broker.publish(
            topic, body, metadata=_outgoing_metadata(metadata), content_type=codec.content_type
        )

    async def aclose(self) -> None:
        for peer in list(self._peers.values()):
            with trio.CancelScope(shield=True):
                await peer.conn.aclose()
        self._peers.clear()


def _outgoing_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    # As in go-micro, a call made from a handler carries the incoming call's metadata on.
    incoming = _current_call.get()
    merged = dict(incoming.metadata) if incoming is not None else {}
    merged.update(metadata or {})
    return merged


async def _receive(state: CallState, service: str) -> Envelope:
    try:
        return await state.receive()
    except ConnectionClosed:
        raise errors.internal_server_error(
            f"service {service}: connection lost during the call", id=CLIENT_ID
        ) from None


def _error_from(reply: Envelope, service: str) -> errors.Error:
    if isinstance(reply, ErrorFrame):
        return errors.Error(reply.id, reply.code, reply.detail, reply.status)
    return errors.internal_server_error(
        f"service {service}: unexpected {type(reply).__name__} frame", id=CLIENT_ID
    )


async def _cancel_remote(peer: Peer, state: CallState) -> None:
    """Tell the callee to cancel its handler: shielded (we are usually being cancelled) and
    bounded (the peer may be gone)."""
    if state.lost or peer.closed:
        return
    with trio.CancelScope(shield=True), trio.move_on_after(CANCEL_SEND_TIMEOUT):
        try:
            await peer.send(Cancel(state.call_id))
        except SessionError:
            pass
