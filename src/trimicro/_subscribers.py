"""A service's subscribers: one consumer task per `@service.subscribe`, drained at shutdown.

Shutdown order for subscribers (before the service deregisters): leave each subscription (so
brokers stop sending to it), handle what is already queued within the drain budget, then
cancel what is left.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from .broker import Broker, BrokerMessage, MessageContext
from .broker._context import message_context
from .codec import CodecError, codec_for
from .rpc import Client
from .rpc._context import using_client
from .rpc._wrappers import Proceed, WrappedCall, Wrapper, compose
from .session import Metadata

__all__ = ["Subscriber", "Subscribers", "subscriber_from_function"]

log = logging.getLogger("trimicro.broker")

SubscriberFn = Callable[[Any], Awaitable[None]]


@attrs.frozen
class Subscriber:
    """One subscriber handler: `fn(message)` for each message on `topic`."""

    topic: str
    fn: SubscriberFn
    queue: str | None = None
    message_type: Any = None


def subscriber_from_function(topic: str, fn: SubscriberFn, queue: str | None) -> Subscriber:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"subscriber for {topic!r} must be an async function")
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 1:
        raise TypeError(f"subscriber for {topic!r} must take (message), got {len(params)}")
    try:
        hint = typing.get_type_hints(fn).get(params[0].name)
    except Exception:
        hint = None
    return Subscriber(topic, fn, queue or None, hint)


@attrs.define(eq=False)
class Subscribers:
    """The running consumers of one service."""

    subscribers: list[Subscriber]
    broker: Broker
    client: Client
    wrappers: list[Wrapper] = attrs.field(factory=list)
    handled: int = 0
    errors: int = 0
    _stop: trio.Event = attrs.field(factory=trio.Event)
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _done: trio.Event = attrs.field(factory=trio.Event)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe everything, report started, and consume until drained."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    for subscriber in self.subscribers:
                        await nursery.start(self._consume, subscriber)
                    task_status.started()
        finally:
            self._done.set()

    async def drain(self, budget: float) -> None:
        """Leave every subscription, handle what is queued within `budget`, cancel the rest."""
        self._stop.set()
        with trio.move_on_after(budget):
            await self._done.wait()
        self._scope.cancel()
        await self._done.wait()

    async def _consume(
        self, subscriber: Subscriber, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            async with self.broker.subscribe(subscriber.topic, queue=subscriber.queue) as sub:
                nursery.start_soon(self._handle_all, subscriber, sub)
                task_status.started()
                await self._stop.wait()
            # Left the subscription: nothing new arrives; _handle_all drains the queue.

    async def _handle_all(self, subscriber: Subscriber, messages: Any) -> None:
        async for message in messages:
            await self._handle(subscriber, message)

    async def _wrapped(
        self, subscriber: Subscriber, message: BrokerMessage, innermost: Proceed
    ) -> None:
        if self.wrappers:
            call = WrappedCall("subscriber", message.topic, "", dict(message.metadata))
            innermost = compose(self.wrappers, call, innermost)
        await innermost()

    async def _handle(self, subscriber: Subscriber, message: BrokerMessage) -> None:
        context = MessageContext(message.topic, subscriber.queue, Metadata(message.metadata))
        token = message_context.set(context)
        try:
            value = codec_for(message.content_type).decode(message.body, subscriber.message_type)
            with using_client(self.client):
                await self._wrapped(subscriber, message, lambda: subscriber.fn(value))
            self.handled += 1
        except CodecError as exc:
            self.errors += 1
            log.warning("undecodable message on %s: %s", message.topic, exc)
        except Exception:
            self.errors += 1
            log.exception("subscriber for %s failed", message.topic)
        finally:
            message_context.reset(token)
