"""Local subscriptions: bounded queues, and choosing targets by queue group."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator

import trio

from ._base import BrokerError, BrokerMessage

__all__ = ["SUBSCRIPTION_QUEUE_SIZE", "QueuedSubscription", "Topics", "validate_topic"]

#: Messages a subscription may hold before publishers are made to wait.
SUBSCRIPTION_QUEUE_SIZE = 256

# Topics map to NATS subjects one to one: no whitespace, no empty tokens, no wildcards.
_TOPIC = re.compile(r"^[^\s.*>]+(\.[^\s.*>]+)*$")


def validate_topic(topic: str) -> str:
    if not _TOPIC.match(topic):
        raise ValueError(
            f"topic {topic!r}: expected dot-separated tokens without spaces or wildcards"
        )
    return topic


class QueuedSubscription:
    """A subscription fed by a broker: iterate it to receive messages."""

    def __init__(self, topic: str, queue: str | None) -> None:
        self.topic = topic
        self.queue = queue or None
        self._send, self._receive = trio.open_memory_channel[BrokerMessage](SUBSCRIPTION_QUEUE_SIZE)

    async def put(self, message: BrokerMessage) -> None:
        """Queue a message, waiting while the subscriber is behind."""
        try:
            await self._send.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise BrokerError(f"subscription to {self.topic} closed") from None

    def close(self) -> None:
        self._send.close()

    def __aiter__(self) -> AsyncIterator[BrokerMessage]:
        return self._receive.__aiter__()


class Topics:
    """Local subscriptions by topic."""

    def __init__(self) -> None:
        self._by_topic: dict[str, list[QueuedSubscription]] = {}

    def add(self, subscription: QueuedSubscription) -> None:
        self._by_topic.setdefault(subscription.topic, []).append(subscription)

    def remove(self, subscription: QueuedSubscription) -> None:
        members = self._by_topic.get(subscription.topic, [])
        if subscription in members:
            members.remove(subscription)

    def targets(self, topic: str, rng: random.Random) -> list[QueuedSubscription]:
        """Every plain subscription, and one random member of each queue group."""
        plain: list[QueuedSubscription] = []
        groups: dict[str, list[QueuedSubscription]] = {}
        for subscription in self._by_topic.get(topic, []):
            if subscription.queue is None:
                plain.append(subscription)
            else:
                groups.setdefault(subscription.queue, []).append(subscription)
        return plain + [rng.choice(members) for members in groups.values()]
