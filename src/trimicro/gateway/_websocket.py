"""Streaming endpoints over a websocket: each message one request or one reply.

The stream opens with the upgrade request: `GET /rpc?service=S&endpoint=E[&request=JSON]`, or
(`rpc` handler) a path such as `/counter/count/up?to=3`, whose query parameters are the first
request as for a GET. Then:

- each text (or binary) message from the client is one JSON request sent on the stream;
- an empty message ends the client's side (`close_send`): the service sees end of input;
- each reply is one text message of JSON;
- the end of the stream closes the websocket with 1000; an error sends the error JSON as a
  last message and closes with 4000 + its HTTP status (4400, 4503, ...).

A client that disconnects cancels the remote handler (the stream is left).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio

from ..codec import JSON as JSON_CODEC
from ..codec import CodecError, json_dumps, json_loads
from ..rpc import Stream, errors
from ..session import SessionError
from ._handlers import Backend, fields_object, qualified, request_schema, rpc_route
from ._http import GATEWAY_ID, HttpRequest, Receive, Send, call_metadata

__all__ = ["StreamTarget", "path_stream_target", "rpc_stream_target", "stream_over_websocket"]


@attrs.frozen
class StreamTarget:
    service: str
    endpoint: str
    request: Any = None


def rpc_stream_target(request: HttpRequest) -> StreamTarget:
    """`/rpc?service=S&endpoint=E[&request=JSON]`."""
    query = dict(request.query())
    service, endpoint = query.get("service"), query.get("endpoint") or query.get("method")
    if not service or not endpoint:
        raise errors.bad_request("query must name service and endpoint", id=GATEWAY_ID)
    first = query.get("request")
    return StreamTarget(service, endpoint, None if first is None else _decode(first.encode()))


async def path_stream_target(backend: Backend, request: HttpRequest) -> StreamTarget:
    """`rpc` handler paths: the route as for HTTP, the query as the first request."""
    route = rpc_route(request.path)
    if route is None:
        raise errors.not_found(f"no service for path {request.path}", id=GATEWAY_ID)
    service = qualified(backend.namespace, route.service)
    schema = request_schema(await backend.records(service), route.endpoint)
    query = request.query()
    return StreamTarget(service, route.endpoint, fields_object(query, schema) if query else None)


def _decode(data: bytes) -> Any:
    try:
        return json_loads(data)
    except CodecError as exc:
        raise errors.bad_request(str(exc), id=GATEWAY_ID) from None


async def stream_over_websocket(
    backend: Backend, request: HttpRequest, receive: Receive, send: Send, target: StreamTarget
) -> None:
    """Open the stream (errors before this point are HTTP answers), accept, then relay."""
    opening: AbstractAsyncContextManager[Stream[Any]] = backend.client.stream(
        target.service, target.endpoint, target.request,
        metadata=call_metadata(request), codec=JSON_CODEC,
    )  # fmt: skip
    async with opening as stream:
        await send({"type": "websocket.accept"})
        outcome = await _relay(stream, receive, send)
    if not outcome.client_left:
        await _close(send, outcome.error)


@attrs.frozen
class _Outcome:
    """How a relay ended: the stream's end (no error), its error, or the client leaving."""

    error: errors.Error | None = None
    client_left: bool = False


async def _relay(stream: Stream[Any], receive: Receive, send: Send) -> _Outcome:
    outcome: list[_Outcome] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_client_to_stream, receive, stream, outcome, nursery.cancel_scope)
        outcome.append(await _stream_to_client(stream, send))
        nursery.cancel_scope.cancel()
    return outcome[0]


async def _client_to_stream(
    receive: Receive, stream: Stream[Any], outcome: list[_Outcome], done: trio.CancelScope
) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            outcome.append(_Outcome(client_left=True))
            done.cancel()
            return
        data = message.get("bytes") or (message.get("text") or "").encode()
        try:
            await _forward(stream, data)
        except errors.Error as error:  # bad JSON: end the stream with a 400
            outcome.append(_Outcome(error))
            done.cancel()
            return
        except SessionError:
            return  # the connection to the service is gone: the other direction reports it


async def _forward(stream: Stream[Any], data: bytes) -> None:
    if stream.send_closed:
        return  # messages after the end of input have nowhere to go
    if data:
        await stream.send(_decode(data))
    else:
        await stream.close_send()


async def _stream_to_client(stream: Stream[Any], send: Send) -> _Outcome:
    try:
        async for reply in stream:
            await send({"type": "websocket.send", "text": json_dumps(reply).decode()})
    except errors.Error as error:
        return _Outcome(error)
    except SessionError as exc:
        return _Outcome(errors.unavailable(f"stream lost: {exc}", id=GATEWAY_ID))
    return _Outcome()


async def _close(send: Send, failure: errors.Error | None) -> None:
    if failure is None:
        await send({"type": "websocket.close", "code": 1000})
        return
    code = failure.code if 400 <= failure.code <= 599 else 500
    await send({"type": "websocket.send", "text": json_dumps(failure.to_dict()).decode()})
    await send({"type": "websocket.close", "code": 4000 + code, "reason": failure.status})
