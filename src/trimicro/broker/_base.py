"""The broker interface: publish to a topic, subscribe with an optional queue group."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs

__all__ = ["Broker", "BrokerError", "BrokerMessage", "Subscription"]


class BrokerError(Exception):
    """The broker could not deliver or subscribe; the message says where and why."""


@attrs.frozen
class BrokerMessage:
    """One published message as brokers carry it: the body is already encoded."""

    topic: str
    body: bytes
    metadata: dict[str, str] = attrs.field(factory=dict)
    content_type: str = "application/cbor"


class Subscription(Protocol):
    """Messages for one subscription, in arrival order."""

    topic: str
    queue: str | None

    def __aiter__(self) -> AsyncIterator[BrokerMessage]: ...


class Broker(Protocol):
    """Publish/subscribe. Obtained from `open_broker(url, ...)`, which owns its tasks.

    - `publish` returns once the broker took responsibility for the message (see
      docs/broker.md for what that means per broker); it pushes back when subscribers are
      behind rather than dropping silently.
    - `subscribe(topic, queue=)`: every subscription without a queue receives every message;
      subscriptions sharing a queue name share the messages (each goes to one member).
    """

    @property
    def scheme(self) -> str: ...

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/cbor",
    ) -> None: ...

    def subscribe(
        self, topic: str, *, queue: str | None = None
    ) -> AbstractAsyncContextManager[Subscription]: ...
