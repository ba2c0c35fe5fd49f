"""The RPC client: `call` and `stream` to services found in the registry.

The caller's trio deadline travels on the wire as a remaining budget; cancelling the caller
(its scope, its deadline) sends a `Cancel` frame so the callee's handler is cancelled too.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from ..broker import Broker
from ..codec import CBOR, Codec
from ..nursery import Backoff, remaining, remaining_budget_ns, run_periodic
from ..registry import Node, ServiceCache, ServiceRecord
from ..session import ConnectError, ConnectionClosed, SessionError, Transport
from . import errors
from ._context import _current_call
from ._envelope import (
    MAX_METADATA,
    Cancel,
    Envelope,
    ErrorFrame,
    Request,
    Response,
    metadata_size,
)
from ._forward import PUBLISH_ENDPOINT, PublishRequest
from ._outlier import FailureKind
from ._peer import Peer
from ._retry import RetryBudget, RetryPolicy
from ._selector import Selection, Selector, candidates_of
from ._stream import RAW, CallState, Stream
from ._wrappers import WrappedCall, Wrapper, compose

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


def is_address(value: str) -> bool:
    """`scheme://...` or `host:port` (maybe with a pin) rather than a service name."""
    if "://" in value:
        return True
    host, sep, port = value.partition("?")[0].rpartition(":")
    return bool(sep and host and port.isdigit())


def _split_address(address: str) -> tuple[str | None, str]:
    scheme, sep, rest = address.partition("://")
    return (scheme, rest) if sep else (None, address)


@attrs.frozen
class _Target:
    """One place a call may go: a node (None when the caller gave an address)."""

    scheme: str | None
    address: str
    node_id: str | None = None


@attrs.frozen
class _Plan:
    targets: list[_Target]
    peers: list[str]  # node ids of the service, for the outlier share limit
    idempotent: bool


class _AttemptFailed(Exception):
    """One attempt failed; `ran` says whether the handler may have run."""

    def __init__(self, error: errors.Error, kind: FailureKind | None, ran: bool) -> None:
        super().__init__(str(error))
        self.error, self.kind, self.ran = error, kind, ran


@attrs.frozen
class ClientStatistics:
    """The client's connections, retries and ejections (part of `Debug.Stats`)."""

    connections: int
    calls_in_flight: int
    retries: int
    retries_refused: int
    ejected_nodes: int


#: Connections with no call for this long are closed (go-micro's pool TTL).
IDLE_TTL = 60.0


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
        selector: Selector | None = None,
        retry_budget: RetryBudget | None = None,
        wrappers: Sequence[Wrapper] = (),
        proxy: str | None = None,
    ) -> None:
        self.wrappers = list(wrappers)
        #: Every call goes through this proxy: an address (`[scheme://]host:port[?cert_sha256=]`)
        #: or the name of a proxy/network service found in the registry.
        self.proxy = proxy
        self._broker = broker
        self._nursery = nursery
        self._cache = cache
        self._transports = transports
        self.policy = RetryPolicy(retries=retries)
        self.selector = selector or Selector()
        self.retry_budget = retry_budget or RetryBudget()
        self._rng = rng or random.Random()
        self._peers: dict[tuple[str, str], Peer] = {}
        self._connecting: dict[tuple[str, str], trio.Lock] = {}
        nursery.start_soon(run_periodic, self._close_idle, IDLE_TTL / 4)

    def statistics(self) -> ClientStatistics:
        now = trio.current_time()
        return ClientStatistics(
            connections=sum(not p.closed for p in self._peers.values()),
            calls_in_flight=sum(len(p.calls) for p in self._peers.values()),
            retries=self.retry_budget.spent,
            retries_refused=self.retry_budget.refused,
            ejected_nodes=self.selector.outliers.ejected_count(now),
        )

    async def _close_idle(self) -> None:
        now = trio.current_time()
        for key, peer in list(self._peers.items()):
            if peer.closed or (not peer.calls and now - peer.last_used >= IDLE_TTL):
                del self._peers[key]
                with trio.CancelScope(shield=True):
                    await peer.conn.aclose()

    # -- selection and connections -------------------------------------------------------

    async def _plan(
        self, service: str, endpoint: str, address: str | None, metadata: Mapping[str, str]
    ) -> _Plan:
        if address is None and self.proxy is not None:
            if is_address(self.proxy):
                address = self.proxy
            else:  # a proxy service: spread over its nodes; the request still names `service`
                return await self._plan_nodes(self.proxy, "", metadata, proxied=True)
        if address is not None:
            scheme, bare = _split_address(address)
            return _Plan([_Target(scheme, bare)], [], idempotent=False)
        return await self._plan_nodes(service, endpoint, metadata)

    async def _plan_nodes(
        self, service: str, endpoint: str, metadata: Mapping[str, str], *, proxied: bool = False
    ) -> _Plan:
        records = await self._cache.get_service(service)
        candidates = candidates_of(records)
        selection = Selection(service, endpoint, metadata, self._rng)
        nodes = self.selector.order(candidates, selection, trio.current_time())
        if not nodes:
            raise errors.unavailable(f"service {service}: no nodes found", id=CLIENT_ID)
        targets = [_Target(n.metadata.get("transport"), _pinned(n), n.id) for n in nodes]
        idempotent = not proxied and _idempotent(records, endpoint)
        return _Plan(targets, [c.node.id for c in candidates], idempotent)

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

    async def _send_request(self, target: _Target, request: Request) -> tuple[Peer, CallState]:
        """Deliver the request frame; failing here means the handler certainly did not run."""
        try:
            peer = await self._peer(target.scheme, target.address)
            state = peer.open_call()
        except (ConnectError, ConnectionClosed) as exc:
            error = errors.unavailable(f"{target.address}: {exc}", id=CLIENT_ID)
            raise _AttemptFailed(error, "connect", ran=False) from None
        try:
            await peer.send(attrs.evolve(request, call=state.call_id), eager=True)
        except SessionError as exc:
            peer.end_call(state)
            error = errors.unavailable(f"{target.address}: {exc}", id=CLIENT_ID)
            raise _AttemptFailed(error, "connect", ran=False) from None
        return peer, state

    async def _attempt_unary(self, target: _Target, request: Request, service: str) -> Response:
        peer, state = await self._send_request(target, request)
        try:
            reply = await state.receive()
        except ConnectionClosed:
            if state.never_ran:  # the server's go-away said it never took this call
                error = errors.unavailable(f"service {service}: node shut down", id=CLIENT_ID)
                raise _AttemptFailed(error, "connect", ran=False) from None
            error = errors.internal_server_error(
                f"service {service}: connection lost during the call", id=CLIENT_ID
            )
            raise _AttemptFailed(error, "connect", ran=True) from None
        except BaseException:
            await _cancel_remote(peer, state)
            raise
        finally:
            peer.end_call(state)
        if isinstance(reply, Response):
            return reply
        error = _error_from(reply, service)
        kind: FailureKind | None = "server" if error.code >= 500 else None
        started = not isinstance(reply, ErrorFrame) or reply.started
        raise _AttemptFailed(error, kind, ran=started)

    def _may_retry(
        self, failure: _AttemptFailed, plan: _Plan, attempt: int, retries: int | None
    ) -> bool:
        limit = self.policy.retries if retries is None else retries
        if attempt >= limit or failure.error.code == 408:
            return False
        if failure.ran and not plan.idempotent:
            return False  # a handler that may have run is retried only when idempotent
        return self.retry_budget.try_spend(trio.current_time())

    def _record(self, plan: _Plan, target: _Target, failure: _AttemptFailed | None) -> None:
        if target.node_id is None:
            return
        if failure is None or failure.kind is None:
            self.selector.outliers.record_success(target.node_id)
        else:
            now = trio.current_time()
            self.selector.outliers.record_failure(target.node_id, failure.kind, now, plan.peers)

    async def _backoff(self, attempt: int, error: errors.Error) -> None:
        ceiling = Backoff(self.policy.backoff_base, self.policy.backoff_cap)
        delay = ceiling.delay(attempt, self._rng)
        if delay >= remaining():
            raise error  # waiting would outlive the caller's budget
        await trio.sleep(delay)

    async def _unary(
        self,
        service: str,
        endpoint: str,
        request: Request,
        address: str | None,
        retries: int | None = None,
    ) -> Response:
        plan = await self._plan(service, endpoint, address, request.metadata)
        self.retry_budget.record_call(trio.current_time())
        attempt = 0
        while True:
            target = plan.targets[attempt % len(plan.targets)]
            in_flight = self.selector.in_flight
            key = target.node_id or target.address
            in_flight[key] = in_flight.get(key, 0) + 1
            try:
                reply = await self._attempt_unary(target, request, service)
            except _AttemptFailed as failure:
                self._record(plan, target, failure)
                if not self._may_retry(failure, plan, attempt, retries):
                    raise failure.error from None
                await self._backoff(attempt, failure.error)
                attempt += 1
                continue
            finally:
                in_flight[key] -= 1
            self._record(plan, target, None)
            return reply

    async def _open_stream(
        self, service: str, endpoint: str, request: Request, address: str | None
    ) -> tuple[Peer, CallState]:
        """Open a stream on the first node that takes the connection (nothing ran before)."""
        plan = await self._plan(service, endpoint, address, request.metadata)
        last: errors.Error | None = None
        for target in plan.targets[: self.policy.retries + 1]:
            try:
                opened = await self._send_request(target, request)
            except _AttemptFailed as failure:
                self._record(plan, target, failure)
                last = failure.error
                continue
            return opened
        assert last is not None
        raise last

    # -- public API ------------------------------------------------------------------------

    def _request(
        self,
        service: str,
        endpoint: str,
        body: bytes | None,
        metadata: Mapping[str, str],
        codec: Codec,
        stream: bool,
    ) -> Request:
        metadata = dict(metadata)
        if metadata_size(metadata) > MAX_METADATA:
            raise ValueError(
                f"metadata of {metadata_size(metadata)} bytes exceeds the limit of {MAX_METADATA}"
            )
        return Request(
            call=0,
            service=service,
            endpoint=endpoint,
            metadata=metadata,
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
        retries: int | None = None,
    ) -> T | Any:
        """Call `service`'s `endpoint` and return its reply (structured into `response`).

        Raises `trimicro.errors.Error` when the remote side (or the client) answers an error;
        the caller's own deadline raises trio's usual exceptions. Retries go to another node,
        only when the call certainly did not run (or the endpoint is idempotent), within the
        caller's deadline and the client's retry budget; `retries` (default: the client's
        policy, 1) caps them for this call, 0 for none.
        """
        if retries is not None and (type(retries) is not int or retries < 0):
            raise ValueError(f"retries must be an integer >= 0, not {retries!r}")
        body = codec.encode(request)
        call = WrappedCall("client", service, endpoint, _outgoing_metadata(metadata))

        async def innermost() -> Any:
            wire = self._request(service, endpoint, body, call.metadata, codec, False)
            reply = await self._unary(service, endpoint, wire, address, retries)
            return codec.decode(reply.body, response)

        if not self.wrappers:
            return await innermost()
        return await compose(self.wrappers, call, innermost)()

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
        wire = self._request(service, endpoint, body, _outgoing_metadata(metadata), codec, True)
        async with self._stream_of(wire, address, codec, response) as stream:
            yield stream

    async def forward(self, request: Request, *, address: str | None = None) -> Response:
        """Send an already-encoded request (a proxy's job) and return the raw reply.

        The body passes through untouched; the budget is recomputed from the current deadline,
        so a forwarded call keeps what is left of the caller's. Raises `errors.Error`.
        """
        wire = attrs.evolve(request, call=0, budget=remaining_budget_ns())
        return await self._unary(request.service, request.endpoint, wire, address)

    @asynccontextmanager
    async def forward_stream(
        self, request: Request, *, address: str | None = None
    ) -> AsyncIterator[Stream[bytes]]:
        """Open a streaming call from an already-encoded request; messages stay raw bytes."""
        wire = attrs.evolve(request, call=0, budget=remaining_budget_ns())
        async with self._stream_of(wire, address, RAW) as stream:
            yield stream

    @asynccontextmanager
    async def _stream_of(
        self, wire: Request, address: str | None, codec: Codec, response: Any = None
    ) -> AsyncIterator[Stream[Any]]:
        peer, state = await self._open_stream(wire.service, wire.endpoint, wire, address)

        async def send_frame(envelope: Envelope) -> None:
            await peer.send(envelope)

        stream: Stream[Any] = Stream(state, send_frame, codec, response)
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
        body = codec.encode(message)
        if self.proxy is not None:  # the proxy publishes (and a network node, everywhere)
            request = PublishRequest(
                topic, body, codec.content_type, _outgoing_metadata(metadata), _message_id(self)
            )
            service = PROXY_SERVICE if is_address(self.proxy) else self.proxy
            await self.call(service, PUBLISH_ENDPOINT, request)
            return
        if self._broker is None:
            raise RuntimeError("this client has no broker: open it with a broker URL")
        await self._broker.publish(
            topic, body, metadata=_outgoing_metadata(metadata), content_type=codec.content_type
        )

    async def publish_here(self, request: PublishRequest) -> None:
        """Publish an already-encoded message through this client's own broker (a proxy's
        job: never through another proxy)."""
        if self._broker is None:
            raise errors.unavailable(f"no broker here for {request.topic}", id=CLIENT_ID)
        await self._broker.publish(
            request.topic,
            request.body,
            metadata=request.metadata,
            content_type=request.content_type,
        )

    async def aclose(self) -> None:
        for peer in list(self._peers.values()):
            with trio.CancelScope(shield=True):
                await peer.conn.aclose()
        self._peers.clear()


#: The name a proxy reached by address is called by (its Proxy.* endpoints answer any name).
PROXY_SERVICE = "trimicro.proxy"


def _message_id(client: Client) -> str:
    return f"{client._rng.getrandbits(128):032x}"


def _pinned(node: Node) -> str:
    """The node's address, carrying its certificate pin when the registry published one."""
    pin = node.metadata.get("cert_sha256")
    return f"{node.address}?cert_sha256={pin}" if pin else node.address


def _idempotent(records: list[ServiceRecord], endpoint: str) -> bool:
    """True when every version publishes `endpoint` as safe to retry."""
    flags = [e.metadata.get("idempotent") == "true" for r in records for e in r.endpoints
             if e.name == endpoint]  # fmt: skip
    return bool(flags) and all(flags)


def _outgoing_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    # As in go-micro, a call made from a handler carries the incoming call's metadata on.
    incoming = _current_call.get()
    merged = dict(incoming.metadata) if incoming is not None else {}
    merged.update(metadata or {})
    return merged


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
