"""The RPC server: serves calls arriving on session connections.

Each call runs as a task in its connection's nursery under a cancel scope whose deadline is
the caller's remaining budget; a `Cancel` frame, the deadline, or the connection dropping
cancels exactly that scope. Handlers therefore never outlive the caller's interest in them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..codec import Codec, CodecError, codec_for
from ..nursery import DrainingError, InFlight, deadline_from_budget_ns
from ..session import Connection, ProtocolError, SessionError
from . import errors
from ._context import Call, Metadata, serving
from ._envelope import (
    MAX_METADATA,
    Cancel,
    End,
    Envelope,
    ErrorFrame,
    GoAway,
    Request,
    Response,
    decode,
    encode,
    metadata_size,
)
from ._forward import PROXY_ENDPOINTS
from ._handler import Handler
from ._stream import RAW, CallState, SendFrame, Stream
from ._wrappers import Proceed, WrappedCall, Wrapper, compose

if TYPE_CHECKING:
    from ._client import Client
    from ._forward import Forwarder

__all__ = ["RpcServer", "ServerStatistics"]

#: `async def fallback(endpoint, request) -> reply` for undeclared unary endpoints.
Fallback = Callable[[str, Any], Awaitable[Any]]

log = logging.getLogger("trimicro.rpc")


@attrs.frozen
class ServerStatistics:
    """Counters since the server started."""

    requests: int
    errors: int
    in_flight: int


@attrs.define(eq=False)
class _ServerCall:
    request: Request
    handler: Handler | None  # None: forwarded to another service
    state: CallState
    scope: trio.CancelScope
    cancelled_by_caller: bool = False


def _error_frame(call_id: int, error: errors.Error, *, started: bool = True) -> ErrorFrame:
    return ErrorFrame(call_id, error.id, error.code, error.detail, error.status, started)


class RpcServer:
    """Dispatches requests to `handlers` (by endpoint name) for service `name`."""

    def __init__(
        self,
        name: str,
        handlers: Mapping[str, Handler],
        *,
        client: Client | None = None,
        max_concurrency: int = 1024,
        wrappers: Sequence[Wrapper] = (),
        forwarder: Forwarder | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        self.wrappers = list(wrappers)
        self.name = name
        #: Requests for another service go here (a proxy); without one they are served by
        #: endpoint name, whatever service they name.
        self.forwarder = forwarder
        #: Unary calls of endpoints nobody declared go here with the endpoint's name (a
        #: sidecar's app answers whatever it answers); without one they are 404.
        self.fallback = fallback
        self.handlers = handlers
        self.client = client
        self.max_concurrency = max_concurrency
        self.in_flight = InFlight()
        self._requests = 0
        self._errors = 0
        # Counted when a call is admitted (before its task first runs), so a burst read in
        # one go cannot slip past the limit.
        self._admitted = 0
        # Live connections and the highest call id each has received (for go-away).
        self._connections: dict[Connection, int] = {}

    def statistics(self) -> ServerStatistics:
        return ServerStatistics(self._requests, self._errors, self.in_flight.statistics().in_flight)

    async def serve_connection(self, conn: Connection) -> None:
        """Serve every call on `conn` until it closes; then cancel what still runs."""
        calls: dict[int, _ServerCall] = {}
        self._connections[conn] = 0
        async with trio.open_nursery() as nursery:
            try:
                await self._read_loop(conn, nursery, calls)
            except ProtocolError as exc:
                log.warning("closing connection from %s: %s", conn.peer, exc)
            finally:
                for call in calls.values():
                    call.state.connection_lost()
                nursery.cancel_scope.cancel()
                self._connections.pop(conn, None)
        await conn.aclose()

    async def _read_loop(
        self, conn: Connection, nursery: trio.Nursery, calls: dict[int, _ServerCall]
    ) -> None:
        while True:
            try:
                envelope = decode(await conn.receive())
            except SessionError as exc:
                if isinstance(exc, ProtocolError):
                    raise
                return
            if isinstance(envelope, Request):
                self._connections[conn] = max(self._connections.get(conn, 0), envelope.call)
                await self._start_call(conn, nursery, calls, envelope)
                continue
            call = calls.get(envelope.call)
            if call is None:
                continue  # the call already ended: late frames are harmless
            if isinstance(envelope, Cancel):
                call.cancelled_by_caller = True
                call.scope.cancel()
            else:
                call.state.deliver(envelope)

    async def go_away(self) -> None:
        """Tell every client which calls this server answered, before connections close: a
        call sent later never ran, and the client may retry it elsewhere."""
        for conn, last in list(self._connections.items()):
            await _send_quietly(conn, GoAway(last))

    def _refusal(self, request: Request, calls: Mapping[int, _ServerCall]) -> errors.Error | None:
        """Why this request cannot start (nothing runs), or None."""
        handler = self.handlers.get(request.endpoint)
        if request.call in calls:
            raise ProtocolError(f"call id {request.call} is already in use")
        if self._forwarded(request):
            pass  # whether the endpoint exists, and streams, is the backend's business
        elif handler is None and self.fallback is not None and not request.stream:
            pass
        elif handler is None:
            return errors.not_found(f"unknown endpoint {request.endpoint}", id=self.name)
        elif handler.stream != request.stream:
            kind = "a streaming" if handler.stream else "a unary"
            return errors.method_not_allowed(f"{request.endpoint} is {kind} endpoint", id=self.name)
        if metadata_size(request.metadata) > MAX_METADATA:
            return errors.bad_request(
                f"metadata of {metadata_size(request.metadata)} bytes exceeds the limit of "
                f"{MAX_METADATA}",
                id=self.name,
            )
        if not self.in_flight.accepting:
            return errors.unavailable(f"{self.name} is shutting down", id=self.name)
        if self._admitted >= self.max_concurrency:
            return errors.unavailable(f"{self.name} is at capacity", id=self.name)
        return None

    def _handler(self, endpoint: str) -> Handler:
        handler = self.handlers.get(endpoint)
        if handler is not None:
            return handler
        fallback = self.fallback
        assert fallback is not None  # `_refusal` let the call in

        async def answer(request: Any) -> Any:
            return await fallback(endpoint, request)

        return Handler(endpoint, answer)

    def _forwarded(self, request: Request) -> bool:
        if self.forwarder is None or request.service == self.name:
            return False
        # The proxy's own endpoints (Proxy.Publish) are answered here, by any name.
        own = request.endpoint.startswith(PROXY_ENDPOINTS) and request.endpoint in self.handlers
        return not own

    async def _start_call(
        self,
        conn: Connection,
        nursery: trio.Nursery,
        calls: dict[int, _ServerCall],
        request: Request,
    ) -> None:
        self._requests += 1
        refusal = self._refusal(request, calls)
        if refusal is None:
            try:
                codec_for(request.ct)
            except CodecError as exc:
                refusal = errors.bad_request(str(exc), id=self.name)
        if refusal is not None:
            self._errors += 1
            await _send_quietly(conn, _error_frame(request.call, refusal, started=False))
            return
        deadline = deadline_from_budget_ns(request.budget)
        call = _ServerCall(
            request=request,
            handler=None if self._forwarded(request) else self._handler(request.endpoint),
            state=CallState(request.call),
            scope=trio.CancelScope(deadline=deadline),
        )
        calls[request.call] = call
        self._admitted += 1
        nursery.start_soon(self._run_call, conn, calls, call)

    async def _run_call(
        self, conn: Connection, calls: dict[int, _ServerCall], call: _ServerCall
    ) -> None:
        request = call.request
        codec = codec_for(request.ct)
        context = Call(
            service=self.name,
            endpoint=request.endpoint,
            metadata=Metadata(request.metadata),
            peer=conn.peer,
            deadline=call.scope.deadline,
        )
        try:
            await self._run_admitted(conn, calls, call, codec, context)
        finally:
            self._admitted -= 1

    async def _run_admitted(
        self,
        conn: Connection,
        calls: dict[int, _ServerCall],
        call: _ServerCall,
        codec: Codec,
        context: Call,
    ) -> None:
        request = call.request
        try:
            # The reply is part of the tracked work: a drain waits until it has been sent.
            with self.in_flight.track(call.scope):
                reply = await self._reply_of(conn, calls, call, codec, context)
                await self._send_reply(conn, reply)
        except DrainingError:  # draining began between accepting the call and starting it
            call.state.close()
            calls.pop(request.call, None)
            shutting_down = errors.unavailable(f"{self.name} is shutting down", id=self.name)
            await self._send_reply(conn, _error_frame(request.call, shutting_down, started=False))

    async def _send_reply(self, conn: Connection, reply: Envelope | None) -> None:
        if isinstance(reply, ErrorFrame):
            self._errors += 1
        if reply is not None:
            await _send_quietly(conn, reply)

    async def _reply_of(
        self,
        conn: Connection,
        calls: dict[int, _ServerCall],
        call: _ServerCall,
        codec: Codec,
        context: Call,
    ) -> Envelope | None:
        request = call.request
        reply: Envelope | None
        try:
            with call.scope, serving(context, self.name, self.client):
                reply = await self._invoke(conn, call, codec)
            if call.scope.cancelled_caught:
                reply = self._cancelled_reply(call)
        except errors.Error as exc:
            reply = _error_frame(request.call, exc)
        except CodecError as exc:
            reply = _error_frame(request.call, errors.bad_request(str(exc), id=self.name))
        except Exception:
            log.exception("handler %s failed", request.endpoint)
            reply = _error_frame(
                request.call, errors.internal_server_error("internal server error", id=self.name)
            )
        finally:
            call.state.close()
            calls.pop(request.call, None)
        return reply

    async def _invoke(self, conn: Connection, call: _ServerCall, codec: Codec) -> Envelope:
        request, handler = call.request, call.handler

        async def send_frame(envelope: Envelope) -> None:
            await conn.send(encode(envelope))

        if handler is None:
            return await self._forward(call, send_frame)
        argument = (
            None if request.body is None else codec.decode(request.body, handler.request_type)
        )

        if handler.stream:
            stream: Stream[Any] = Stream(call.state, send_frame, codec, handler.stream_type)
            await self._wrapped(request, lambda: handler.fn(argument, stream))
            return End(request.call)
        result = await self._wrapped(request, lambda: handler.fn(argument))
        return Response(request.call, {}, codec.encode(result))

    async def _forward(self, call: _ServerCall, send_frame: SendFrame) -> Envelope:
        request, forwarder = call.request, self.forwarder
        assert forwarder is not None
        if request.stream:
            downstream: Stream[bytes] = Stream(call.state, send_frame, RAW)
            await self._wrapped(request, lambda: forwarder.stream(request, downstream, self.name))
            return End(request.call)
        reply: Response = await self._wrapped(request, lambda: forwarder.unary(request, self.name))
        return Response(request.call, reply.metadata, reply.body)

    async def _wrapped(self, request: Request, innermost: Proceed) -> Any:
        if not self.wrappers:
            return await innermost()
        call = WrappedCall("handler", self.name, request.endpoint, dict(request.metadata))
        return await compose(self.wrappers, call, innermost)()

    def _cancelled_reply(self, call: _ServerCall) -> ErrorFrame | None:
        if call.cancelled_by_caller:
            return None  # nobody is listening for an answer
        if trio.current_time() >= call.scope.deadline and call.scope.deadline != math.inf:
            detail = f"{call.request.endpoint} ran out of its deadline budget"
            return _error_frame(call.request.call, errors.timeout(detail, id=self.name))
        # Cancelled by the drain: the handler ran (partly), so this must not read as a 503,
        # which promises the caller that nothing ran.
        detail = f"{call.request.endpoint} was cancelled: {self.name} shut down during the call"
        return _error_frame(call.request.call, errors.internal_server_error(detail, id=self.name))


async def _send_quietly(conn: Connection, envelope: Envelope) -> None:
    # The caller may be gone (cancelled, disconnected): an undeliverable reply is not an error.
    try:  # the handler ends right after: no schedule point of its own when written at once
        await getattr(conn, "send_eager", conn.send)(encode(envelope))
    except SessionError:
        pass
