"""`TunnelBroker(tunnel)`: publish/subscribe as tunnel sessions, with no broker server.

Used in code over a running tunnel (a URL alone cannot create one, so there is no
`tunnel://` entry point):

    async with open_tunnel(...) as tunnel, TunnelBroker(tunnel) as broker:
        async with broker.subscribe("orders.created") as subscription: ...
        await broker.publish("orders.created", body, metadata={...})

- A plain subscription listens on channel `broker/<topic>` (one listener per node, shared by
  that node's subscriptions); a publisher sends each message once on a **multicast** session
  of that channel, which reaches every link whose peer announced it, and this node's own
  listener. Each receiving node hands the message to every plain subscription it has.
- A queue group listens on `broker/<topic> queue=<queue>`. For each message the publisher
  picks one place that announced that channel (a link, or this node), uniformly at random,
  and sends on a **unicast** session pinned to that link (kept open and reused); that node
  gives the message to one of its members of the group, at random. A place that cannot be
  reached is skipped for the next one.
- A multicast send reaches only links whose announce has arrived. When no subscriber of the
  topic is known at all, `publish` waits up to `announce_wait` (1 s) for an announce (a link
  just up, a subscription just made elsewhere); if none comes, the message reaches nobody
  and later publishes of that topic do not wait again until the set of links changes.

`publish` returns once the message is queued on every target link (waiting while a link's
queue is full): at-most-once, in order per publisher and subscriber; see docs/broker.md.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

from ..codec import DEFAULT_LIMITS, CodecError, Limits, cbor_dumps, cbor_loads
from ..session.tunnel import DialError, Tunnel, TunnelListener, TunnelSession
from ._base import BrokerError, BrokerMessage
from ._subscriptions import QueuedSubscription, validate_topic

__all__ = ["ANNOUNCE_WAIT", "TunnelBroker", "queue_channel", "topic_channel"]

log = logging.getLogger("trimicro.broker")

#: How long a publish waits for an announce when no subscriber of its topic is known.
ANNOUNCE_WAIT = 1.0
#: Room left in a link frame for the tunnel's own fields around a session message.
_ENVELOPE_ROOM = 1024
#: The place of this node's own listener among a queue group's places.
_HERE = ""


def topic_channel(topic: str) -> str:
    """The tunnel channel of a topic's plain subscriptions."""
    return f"broker/{topic}"


def queue_channel(topic: str, queue: str) -> str:
    """The tunnel channel of a queue group (topics have no spaces: this cannot collide)."""
    return f"broker/{topic} queue={queue}"


@attrs.define(eq=False)
class _Channel:
    """This node's subscriptions on one channel, served by one tunnel listener."""

    channel: str
    queue: str | None
    listener: TunnelListener
    members: list[QueuedSubscription] = attrs.field(factory=list)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


class TunnelBroker:
    """The `Broker` over a running `Tunnel`: `async with TunnelBroker(tunnel) as broker`."""

    scheme = "tunnel"

    def __init__(
        self,
        tunnel: Tunnel,
        *,
        rng: random.Random | None = None,
        announce_wait: float = ANNOUNCE_WAIT,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.tunnel = tunnel
        self._rng = rng or random.Random()
        self._announce_wait = announce_wait
        self._limits = limits
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._local: dict[str, _Channel] = {}
        self._sessions: dict[tuple[str, str | None], TunnelSession] = {}  # (channel, link)
        self._opening: dict[tuple[str, str | None], trio.Lock] = {}
        self._nobody: dict[str, frozenset[str]] = {}  # topic → links up when none was found

    def __repr__(self) -> str:
        return f"<TunnelBroker {self.tunnel!r}>"

    async def __aenter__(self) -> TunnelBroker:
        stack = AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._stack is not None and self._nursery is not None
        with trio.CancelScope(shield=True):
            for session in list(self._sessions.values()):
                await session.aclose()
        self._sessions.clear()
        self._nursery.cancel_scope.cancel()
        stack, self._stack, self._nursery = self._stack, None, None
        return await stack.__aexit__(*exc)

    def _running(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("use the broker inside `async with TunnelBroker(tunnel)`")
        return self._nursery

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
        self._running()
        data = cbor_dumps(
            {"topic": topic, "metadata": dict(metadata or {}), "ct": content_type, "body": body}
        )
        limit = self._limits.max_frame_size - _ENVELOPE_ROOM
        if len(data) > limit:
            raise BrokerError(f"message to {topic} of {len(data)} bytes exceeds {limit}")
        plain, groups = await self._targets(topic)
        if plain:
            await self._send_multicast(topic_channel(topic), data)
        failed = [
            channel
            for channel, places in sorted(groups.items())
            if not await self._send_to_one(channel, places, data)
        ]
        if failed:
            raise BrokerError(f"could not deliver to {topic} queue groups: {', '.join(failed)}")

    def _known(self, topic: str) -> tuple[bool, dict[str, list[str]]]:
        """Whether any node has plain subscriptions of `topic`; each queue group's places."""
        announced, here = self.tunnel.announced(), self.tunnel.listening()
        plain_channel = topic_channel(topic)
        prefix = plain_channel + " queue="
        groups: dict[str, list[str]] = {}
        for channel in sorted(set(announced) | here):
            if channel.startswith(prefix):
                places = groups[channel] = list(announced.get(channel, []))
                if channel in here:
                    places.append(_HERE)
        return plain_channel in here or plain_channel in announced, groups

    async def _targets(self, topic: str) -> tuple[bool, dict[str, list[str]]]:
        plain, groups = self._known(topic)
        if plain or groups or self._nobody.get(topic) == frozenset(self.tunnel.links()):
            return plain, groups
        with trio.move_on_after(self._announce_wait):
            while not (plain or groups):
                await self.tunnel.wait_announced()
                plain, groups = self._known(topic)
        if plain or groups:
            self._nobody.pop(topic, None)
        else:
            self._nobody[topic] = frozenset(self.tunnel.links())
            log.debug("no subscriber of %s within %g s", topic, self._announce_wait)
        return plain, groups

    async def _send_multicast(self, channel: str, data: bytes) -> None:
        for _ in range(2):  # a session that ended is dialled again, once
            session = await self._session(channel, None, "multicast")
            try:
                await session.send(data)
                return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._forget(channel, None, session)
        raise BrokerError(f"cannot publish on {channel!r}: the session keeps ending")

    async def _send_to_one(self, channel: str, places: list[str], data: bytes) -> bool:
        self._rng.shuffle(places)
        for place in places:
            session: TunnelSession | None = None
            try:
                session = await self._session(channel, place, "unicast")
                await session.send(data)
                return True
            except (DialError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.info("queue group %r at %r: %s", channel, place or "here", exc)
                if session is not None:
                    self._forget(channel, place, session)
        return False

    async def _session(self, channel: str, place: str | None, mode: str) -> TunnelSession:
        """Our session on `channel` (multicast: place None; unicast: on that link or here),
        dialled once and reused."""
        key = (channel, place)
        lock = self._opening.setdefault(key, trio.Lock())
        async with lock:
            session = self._sessions.get(key)
            if session is None:
                session = await self.tunnel.dial(channel, mode=mode, link=place)
                self._sessions[key] = session
        return session

    def _forget(self, channel: str, place: str | None, session: TunnelSession) -> None:
        if self._sessions.get((channel, place)) is session:
            del self._sessions[(channel, place)]
        self._running().start_soon(session.aclose)

    # -- subscribing -----------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, topic: str, *, queue: str | None = None
    ) -> AsyncIterator[QueuedSubscription]:
        validate_topic(topic)
        nursery = self._running()
        subscription = QueuedSubscription(topic, queue)
        channel = queue_channel(topic, queue) if queue else topic_channel(topic)
        local = self._local.get(channel)
        if local is None:
            listener = self.tunnel.listen(channel)
            local = self._local[channel] = _Channel(channel, queue or None, listener)
            nursery.start_soon(self._serve, local)
        local.members.append(subscription)
        try:
            yield subscription
        finally:
            local.members.remove(subscription)
            subscription.close()
            if not local.members and self._local.get(channel) is local:
                del self._local[channel]
                local.scope.cancel()
                with trio.CancelScope(shield=True):
                    await local.listener.aclose()

    async def _serve(self, local: _Channel) -> None:
        with local.scope:
            async with trio.open_nursery() as nursery:
                async for session in local.listener:
                    nursery.start_soon(self._read, local, session)

    async def _read(self, local: _Channel, session: TunnelSession) -> None:
        try:
            async with session:
                async for data in session:
                    await self._deliver(local, _decode(data, self._limits))
        except (trio.BrokenResourceError, ValueError) as exc:
            log.info("broker session on %r ended: %s", local.channel, exc)

    async def _deliver(self, local: _Channel, message: BrokerMessage) -> None:
        """Every plain member gets the message; a queue group gives it to one member."""
        if local.queue is None:
            targets = list(local.members)
        else:
            targets = list(local.members)
            self._rng.shuffle(targets)
        for subscription in targets:
            try:
                await subscription.put(message)
            except BrokerError:
                continue  # it unsubscribed meanwhile
            if local.queue is not None:
                return


def _decode(data: bytes, limits: Limits) -> BrokerMessage:
    try:
        frame = cbor_loads(data, max_depth=limits.max_depth)
    except CodecError as exc:
        raise ValueError(f"malformed broker message: {exc}") from None
    if not isinstance(frame, dict):
        raise ValueError("malformed broker message: not a map")
    topic, ct, body, metadata = (frame.get(k) for k in ("topic", "ct", "body", "metadata"))
    if not (
        isinstance(topic, str)
        and isinstance(ct, str)
        and isinstance(body, bytes)
        and isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise ValueError("malformed broker message: wrong fields")
    return BrokerMessage(topic, body, metadata, ct)
