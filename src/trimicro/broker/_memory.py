"""`memory://NAME`: an in-process broker. Brokers opened with the same NAME share topics.

`publish` returns once the message sits in every target subscription's queue; a full queue
makes `publish` wait (back-pressure), never drop. Runs under MockClock.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio

from ._base import BrokerMessage
from ._subscriptions import QueuedSubscription, Topics, validate_topic

__all__ = ["MemoryBroker", "open_memory_broker"]

_hubs: dict[str, Topics] = {}


class MemoryBroker:
    """The `Broker` for `memory://NAME`."""

    scheme = "memory"

    def __init__(self, topics: Topics, rng: random.Random) -> None:
        self._topics = topics
        self._rng = rng

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/cbor",
    ) -> None:
        validate_topic(topic)
        message = BrokerMessage(topic, body, dict(metadata or {}), content_type)
        targets = self._topics.targets(topic, self._rng)
        await trio.lowlevel.checkpoint()
        for subscription in targets:
            await subscription.put(message)

    @asynccontextmanager
    async def subscribe(
        self, topic: str, *, queue: str | None = None
    ) -> AsyncIterator[QueuedSubscription]:
        validate_topic(topic)
        subscription = QueuedSubscription(topic, queue)
        self._topics.add(subscription)
        try:
            yield subscription
        finally:
            self._topics.remove(subscription)
            subscription.close()


@asynccontextmanager
async def open_memory_broker(
    url: str = "memory://default", *, rng: random.Random | None = None, **_: object
) -> AsyncIterator[MemoryBroker]:
    """Open the in-process broker named by `url` (`memory://NAME`)."""
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise ValueError(f"broker URL {url!r}: expected memory://NAME")
    topics = _hubs.setdefault(parts.netloc or "default", Topics())
    yield MemoryBroker(topics, rng or random.Random())
