"""`POST /broker?topic=T` publishes the JSON body; a websocket on `GET /broker?topic=T`
(`&queue=Q` to share messages with other members of a queue group) receives each message
published to T as one text frame of JSON, until either side closes.

The subscription exists before the websocket is accepted: a client that saw the upgrade
succeed receives everything published after it.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import trio

from ..broker import Broker, BrokerError, BrokerMessage, Subscription
from ..codec import JSON as JSON_CODEC
from ..codec import CodecError, codec_for, json_dumps, json_loads
from ..gateway._http import HttpRequest, Receive, Send, call_metadata, read_body, respond_json
from ..gateway._limits import HttpLimits
from ..rpc import Client, errors
from ._registrations import SIDECAR_ID

__all__ = ["publish", "subscribe_over_websocket", "topic_of"]


def topic_of(request: HttpRequest) -> tuple[str, str | None]:
    """The `topic` (required) and `queue` (optional) query parameters."""
    query = dict(request.query())
    topic = query.get("topic", "")
    if not topic or any(c.isspace() for c in topic):
        raise errors.bad_request("query parameter topic must be a topic name", id=SIDECAR_ID)
    return topic, query.get("queue") or None


async def publish(
    client: Client, limits: HttpLimits, request: HttpRequest, receive: Receive, send: Send
) -> None:
    """`POST /broker?topic=T` with a JSON body: published as JSON, with the request's `X-*`
    headers as the message metadata."""
    topic, _queue = topic_of(request)
    body = await read_body(receive, request, limits)
    try:
        message = json_loads(body)
    except CodecError as exc:
        raise errors.bad_request(f"body: {exc}", id=SIDECAR_ID) from None
    try:
        await client.publish(topic, message, metadata=call_metadata(request), codec=JSON_CODEC)
    except BrokerError as exc:
        raise errors.unavailable(f"broker: {exc}", id=SIDECAR_ID) from None
    await respond_json(send, 200, {"topic": topic, "published": True})


def _decoded(message: BrokerMessage) -> Any:
    try:
        return codec_for(message.content_type).decode(message.body)
    except CodecError as exc:
        return {"undecodable": str(exc)}


async def subscribe_over_websocket(
    broker: Broker, request: HttpRequest, receive: Receive, send: Send
) -> None:
    """Subscribe (a refusal is an HTTP error answer), accept, then relay messages until the
    client leaves; the broker ending the subscription closes with 1001 (going away), a
    broker failure with 1011."""
    topic, queue = topic_of(request)
    async with AsyncExitStack() as stack:
        try:
            subscription = await stack.enter_async_context(broker.subscribe(topic, queue=queue))
        except BrokerError as exc:
            raise errors.unavailable(f"broker: {exc}", id=SIDECAR_ID) from None
        await send({"type": "websocket.accept"})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_client_leaves, receive, nursery.cancel_scope)
            code = await _relay(subscription, send)
            await send({"type": "websocket.close", "code": code})
            nursery.cancel_scope.cancel()


async def _relay(subscription: Subscription, send: Send) -> int:
    """Send each message as a JSON text frame; the close code once the subscription ends."""
    try:
        async for message in subscription:
            text = json_dumps(_decoded(message)).decode()
            await send({"type": "websocket.send", "text": text})
    except BrokerError:
        return 1011
    return 1001


async def _until_client_leaves(receive: Receive, done: trio.CancelScope) -> None:
    """Frames from the client mean nothing here; its disconnect ends the subscription."""
    while (await receive())["type"] != "websocket.disconnect":
        pass
    done.cancel()
