"""`direct://` (default): publish/subscribe with no broker server.

Each subscription registers itself in the registry as a node of the service
`trimicro.broker:<topic>` (node metadata: `topic`, `queue`, `transport`), served by one
listener per broker. A publisher looks the topic up (through the registry cache), then for
every plain subscriber, and for one member of every queue group, sends a `pub` frame over the
session transport and waits for its `ack`. A member that cannot be reached is skipped for the
next member of its group.

`publish` returns once every target group acknowledged: the message sits in the
subscriber's bounded queue (a full queue delays the ack, so publishers feel back-pressure).
"""

from __future__ import annotations

import itertools
import logging
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..nursery import open_owned_nursery
from ..registry import (
    Node,
    Registry,
    ServiceCache,
    ServiceRecord,
    keep_registered,
    open_service_cache,
)
from ..session import Connection, SessionError, Transport
from ._base import BrokerError, BrokerMessage
from ._subscriptions import QueuedSubscription, validate_topic

__all__ = ["BROKER_SERVICE_PREFIX", "DirectBroker", "open_direct_broker"]

log = logging.getLogger("trimicro.broker")

BROKER_SERVICE_PREFIX = "trimicro.broker:"
#: How long a publisher waits for one subscriber's ack before trying the next member.
ACK_TIMEOUT = 10.0


def _service_name(topic: str) -> str:
    return BROKER_SERVICE_PREFIX + topic


class _Outbound:
    """A publisher's connection to one subscriber listener; acks matched by id."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.closed = False

    async def deliver(self, subscriber: str, message: BrokerMessage) -> None:
        frame_id = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._waiting[frame_id] = send
        try:
            await self.conn.send(_pub_frame(frame_id, subscriber, message))
            with trio.fail_after(ACK_TIMEOUT):
                reply = await receive.receive()
        except (trio.EndOfChannel, trio.TooSlowError) as exc:
            raise BrokerError(f"no ack from {self.conn.peer}: {type(exc).__name__}") from None
        finally:
            self._waiting.pop(frame_id, None)
        if reply.get("t") != "ack":
            raise BrokerError(f"{self.conn.peer} refused the message: {reply.get('detail')}")

    async def read_acks(self) -> None:
        try:
            while True:
                reply = await self.conn.receive()
                waiter = self._waiting.get(reply.get("id", -1))
                if waiter is not None:
                    waiter.send_nowait(reply)
        except SessionError:
            pass
        finally:
            self.closed = True
            for waiter in self._waiting.values():
                waiter.close()
            await self.conn.aclose()


def _pub_frame(frame_id: int, subscriber: str, message: BrokerMessage) -> dict[str, Any]:
    return {
        "t": "pub",
        "id": frame_id,
        "sub": subscriber,
        "topic": message.topic,
        "metadata": message.metadata,
        "ct": message.content_type,
        "body": message.body,
    }


def _message_from(frame: dict[str, Any]) -> BrokerMessage:
    metadata = frame.get("metadata")
    fields = (frame.get("topic"), frame.get("ct"), frame.get("body"))
    if not isinstance(metadata, dict) or not all(isinstance(f, str | bytes) for f in fields):
        raise ValueError("malformed pub frame")
    topic, content_type, body = fields
    return BrokerMessage(str(topic), bytes(body), dict(metadata), str(content_type))  # type: ignore[arg-type]


class DirectBroker:
    """The `Broker` for `direct://`."""

    scheme = "direct"

    def __init__(
        self,
        nursery: trio.Nursery,
        registry: Registry,
        cache: ServiceCache,
        transport: Transport,
        address: str,
        rng: random.Random,
    ) -> None:
        self._nursery = nursery
        self._registry = registry
        self._cache = cache
        self._transport = transport
        self._address = address
        self._rng = rng
        self._local: dict[str, QueuedSubscription] = {}
        self._bound: str | None = None
        self._listen_lock = trio.Lock()
        self._outbound: dict[str, _Outbound] = {}

    # -- subscribing -----------------------------------------------------------------------

    async def _listener(self) -> str:
        async with self._listen_lock:
            if self._bound is None:
                self._bound = await self._nursery.start(
                    self._transport.serve, self._serve_publisher, self._address
                )
        return self._bound

    async def _serve_publisher(self, conn: Connection) -> None:
        while True:
            try:
                frame = await conn.receive()
            except SessionError:
                return
            await conn.send(await self._accept(frame))

    async def _accept(self, frame: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = {"t": "ack", "id": frame.get("id")}
        subscription = self._local.get(str(frame.get("sub")))
        try:
            if frame.get("t") != "pub" or subscription is None:
                raise ValueError(f"no subscription {frame.get('sub')!r} here")
            await subscription.put(_message_from(frame))
        except (ValueError, BrokerError) as exc:
            reply = {"t": "nack", "id": frame.get("id"), "detail": str(exc)}
        return reply

    @asynccontextmanager
    async def subscribe(
        self, topic: str, *, queue: str | None = None
    ) -> AsyncIterator[QueuedSubscription]:
        validate_topic(topic)
        subscription = QueuedSubscription(topic, queue)
        sub_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        address = await self._listener()
        metadata = {"transport": self._transport.scheme, "topic": topic, "queue": queue or ""}
        record = ServiceRecord(_service_name(topic), nodes=[Node(sub_id, address, metadata)])
        self._local[sub_id] = subscription
        refresh = trio.CancelScope()
        try:
            await self._nursery.start(_keep, refresh, self._registry, record)
            yield subscription
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                refresh.cancel()
                await self._registry.deregister(record)
            self._local.pop(sub_id, None)
            subscription.close()

    # -- publishing ------------------------------------------------------------------------

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
        failures = []
        for group in self._groups(await self._cache.get_service(_service_name(topic))):
            if not await self._deliver_to_one(group, message):
                failures.append(group[0].metadata.get("queue") or group[0].id)
        if failures:
            raise BrokerError(f"could not deliver to {topic} subscribers: {', '.join(failures)}")

    def _groups(self, records: list[ServiceRecord]) -> list[list[Node]]:
        groups: dict[str, list[Node]] = {}
        for node in (n for r in records for n in r.nodes):
            key = node.metadata.get("queue") or f"node:{node.id}"
            groups.setdefault(key, []).append(node)
        for members in groups.values():
            self._rng.shuffle(members)
        return list(groups.values())

    async def _deliver_to_one(self, members: list[Node], message: BrokerMessage) -> bool:
        for node in members:
            try:
                outbound = await self._outbound_to(node.address)
                await outbound.deliver(node.id, message)
                return True
            except (SessionError, BrokerError) as exc:
                log.info("delivery to %s at %s failed: %s", node.id, node.address, exc)
        return False

    async def _outbound_to(self, address: str) -> _Outbound:
        outbound = self._outbound.get(address)
        if outbound is None or outbound.closed:
            conn = await self._transport.connect(self._nursery, address)
            outbound = self._outbound[address] = _Outbound(conn)
            self._nursery.start_soon(outbound.read_acks)
        return outbound


async def _keep(
    scope: trio.CancelScope,
    registry: Registry,
    record: ServiceRecord,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await keep_registered(registry, record, task_status=task_status)


@asynccontextmanager
async def open_direct_broker(
    url: str = "direct://",
    *,
    registry: Registry,
    transport: Transport,
    address: str = "127.0.0.1:0",
    rng: random.Random | None = None,
    **_: object,
) -> AsyncIterator[DirectBroker]:
    """The direct broker, using `registry` to find subscribers and `transport` to reach them."""
    async with open_service_cache(registry) as cache, open_owned_nursery() as nursery:
        broker = DirectBroker(nursery, registry, cache, transport, address, rng or random.Random())
        try:
            yield broker
        finally:
            nursery.cancel_scope.cancel()
