"""`nats://HOST:PORT[,HOST:PORT]`: a trio NATS client and the broker on top of it.

The protocol is `_nats_proto.py` (sans-io); this is the thin trio driver: one connection task
that connects, serves (reader + keepalive timer) and reconnects with backoff and full jitter
across the server list, resubscribing every live subscription (same sids) and flushing what
was published while disconnected (bounded: `RECONNECT_BUFFER`, as nats.go's 8 MiB).

Delivery: NATS core is at-most-once. `publish` returns once the message is written to the
connection (or buffered while reconnecting); a message in flight when a server dies is lost.
A subscription's queue is bounded (`SUBSCRIPTION_PENDING`); when it is full the reader waits,
pushing back on the server rather than dropping (the server may then flag us a slow consumer).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio

from ..nursery import Backoff, open_owned_nursery
from ..session._address import parse_address
from ._base import BrokerError, BrokerMessage
from ._nats_proto import Err, Msg, NatsProtocol, NatsProtocolError, Ping, StaleConnection
from ._subscriptions import validate_topic

__all__ = ["NatsBroker", "NatsClient", "NatsError", "open_nats", "open_nats_broker"]

log = logging.getLogger("trimicro.broker")

RECONNECT_BUFFER = 8 * 1024 * 1024
SUBSCRIPTION_PENDING = 1024
CONNECT_TIMEOUT = 5.0
DEFAULT_CONTENT_TYPE = "application/json"  # what a plain NATS client most likely sends

RECONNECT_BACKOFF = Backoff(0.1, 5.0)

OpenStream = Callable[[str, int], Awaitable[trio.abc.Stream]]


class NatsError(BrokerError):
    """The NATS connection failed or was refused; the message names the server."""


@attrs.frozen
class NatsStatistics:
    msgs_in: int
    msgs_out: int
    reconnects: int
    buffered: int


@attrs.define(eq=False)
class _Subscription:
    sid: int
    subject: str
    queue: str | None
    send: trio.MemorySendChannel[Msg]
    receive: trio.MemoryReceiveChannel[Msg]


async def _open_tcp(host: str, port: int) -> trio.abc.Stream:
    return await trio.open_tcp_stream(host, port)


class NatsClient:
    """A NATS connection that survives server restarts. Use `open_nats()`."""

    def __init__(
        self,
        servers: list[tuple[str, int]],
        *,
        rng: random.Random,
        ping_interval: float = 120.0,
        max_pings_out: int = 2,
        open_stream: OpenStream = _open_tcp,
        backoff: Backoff = RECONNECT_BACKOFF,
    ) -> None:
        self._servers = servers
        self._rng = rng
        self._ping_interval = ping_interval
        self._max_pings_out = max_pings_out
        self._open_stream = open_stream
        self._backoff = backoff
        self._proto = NatsProtocol(ping_interval=ping_interval, max_pings_out=max_pings_out)
        self._stream: trio.abc.Stream | None = None
        self._write_lock = trio.Lock()
        self._buffer = bytearray()
        self._subs: dict[int, _Subscription] = {}
        self._next_sid = 1
        self.msgs_in = self.msgs_out = self.reconnects = 0

    def statistics(self) -> NatsStatistics:
        return NatsStatistics(self.msgs_in, self.msgs_out, self.reconnects, len(self._buffer))

    # -- connection lifecycle --------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect (the first time failing loudly), serve, and reconnect until cancelled."""
        try:
            await self._run(task_status)
        finally:
            await self._drop_connection()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        attempt, started = 0, False
        while True:
            host, port = self._servers[attempt % len(self._servers)]
            try:
                await self._connect(host, port)
                attempt = 0
                if not started:
                    started = True
                    task_status.started()
                await self._serve()
            except (OSError, trio.BrokenResourceError, NatsProtocolError, trio.TooSlowError) as exc:
                if not started and attempt + 1 >= len(self._servers):
                    raise NatsError(f"cannot connect to nats://{host}:{port}: {exc}") from None
                log.warning("NATS connection to %s:%d lost: %s", host, port, exc)
            await self._drop_connection()
            if started:
                self.reconnects += 1
            await trio.sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1

    async def _connect(self, host: str, port: int) -> None:
        with trio.fail_after(CONNECT_TIMEOUT):
            stream = await self._open_stream(host, port)
            proto = NatsProtocol(
                ping_interval=self._ping_interval, max_pings_out=self._max_pings_out
            )
            while proto.next_event() is None:  # the server speaks first: INFO
                data = await stream.receive_some(65536)
                if not data:
                    raise trio.BrokenResourceError("server closed during INFO")
                proto.receive_data(data)
        proto.connect({"verbose": False, "pedantic": False, "headers": True, "name": "trimicro",
                       "lang": "python-trio", "version": "0.1.0", "protocol": 1})  # fmt: skip
        for sub in self._subs.values():  # resubscribe with the same sids
            proto.subscribe(sub.subject, sub.sid, sub.queue)
        proto.start_timer(trio.current_time())
        self._proto, self._stream = proto, stream
        await stream.send_all(proto.data_to_send() + bytes(self._buffer))
        self._buffer.clear()

    async def _drop_connection(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def _serve(self) -> None:
        async with open_owned_nursery() as nursery:
            nursery.start_soon(self._keepalive)
            await self._read()
            nursery.cancel_scope.cancel()

    async def _read(self) -> None:
        assert self._stream is not None
        while True:
            data = await self._stream.receive_some(65536)
            if not data:
                raise trio.BrokenResourceError("server closed the connection")
            self._proto.receive_data(data)
            await self._dispatch()

    async def _dispatch(self) -> None:
        while (event := self._proto.next_event()) is not None:
            if isinstance(event, Msg):
                self.msgs_in += 1
                sub = self._subs.get(event.sid)
                if sub is not None:
                    await sub.send.send(event)  # a full queue pushes back on the server
            elif isinstance(event, Ping):
                self._proto.pong()
                await self._flush()
            elif isinstance(event, Err):
                log.warning("NATS server error: %s", event.message)
            elif isinstance(event, StaleConnection):
                raise trio.BrokenResourceError("stale connection: PINGs unanswered")

    async def _keepalive(self) -> None:
        while True:
            timer = self._proto.get_timer()
            if timer is None:
                raise trio.BrokenResourceError("stale connection: PINGs unanswered")
            await trio.sleep_until(timer)
            self._proto.handle_timer(trio.current_time())
            await self._dispatch()
            await self._flush()

    # -- commands --------------------------------------------------------------------------

    async def _flush(self) -> None:
        data = self._proto.data_to_send()
        if not data:
            return
        async with self._write_lock:
            if self._stream is None:
                self._buffer_or_fail(data)
                return
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                self._buffer_or_fail(data)  # resent after the reconnect

    def _buffer_or_fail(self, data: bytes) -> None:
        if len(self._buffer) + len(data) > RECONNECT_BUFFER:
            raise NatsError(f"disconnected and the {RECONNECT_BUFFER}-byte buffer is full")
        self._buffer += data

    async def publish(
        self, subject: str, payload: bytes, *, headers: Mapping[str, str] | None = None
    ) -> None:
        try:
            self._proto.publish(subject, payload, headers=headers)
        except NatsProtocolError as exc:
            raise NatsError(str(exc)) from None
        self.msgs_out += 1
        await self._flush()

    @asynccontextmanager
    async def subscribe(
        self, subject: str, *, queue: str | None = None
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Msg]]:
        sid, self._next_sid = self._next_sid, self._next_sid + 1
        send, receive = trio.open_memory_channel[Msg](SUBSCRIPTION_PENDING)
        self._subs[sid] = _Subscription(sid, subject, queue, send, receive)
        try:
            self._proto.subscribe(subject, sid, queue)
        except NatsProtocolError as exc:
            del self._subs[sid]
            raise NatsError(str(exc)) from None
        await self._flush()
        try:
            yield receive
        finally:
            self._subs.pop(sid, None)
            send.close()
            with trio.CancelScope(shield=True):
                self._proto.unsubscribe(sid)
                await self._flush()

    async def flush(self) -> None:
        """A PING/PONG round trip: everything published before has reached the server."""
        self._proto.ping()
        await self._flush()


def _parse_servers(url: str) -> list[tuple[str, int]]:
    parts = urlsplit(url)
    if parts.scheme != "nats" or not parts.netloc:
        raise ValueError(f"broker URL {url!r}: expected nats://HOST:PORT[,HOST:PORT]")
    try:
        return [parse_address(server) for server in parts.netloc.split(",")]
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r}: {exc}") from None


@asynccontextmanager
async def open_nats(
    url: str = "nats://127.0.0.1:4222",
    *,
    rng: random.Random | None = None,
    open_stream: OpenStream = _open_tcp,
    **options: Any,
) -> AsyncIterator[NatsClient]:
    """A connected `NatsClient` whose connection task lives as long as the context."""
    client = NatsClient(
        _parse_servers(url), rng=rng or random.Random(), open_stream=open_stream, **options
    )
    async with open_owned_nursery() as nursery:
        await nursery.start(client.run)
        try:
            yield client
        finally:
            nursery.cancel_scope.cancel()


class NatsBroker:
    """The `Broker` for `nats://`: topics are subjects; metadata and content type travel as
    NATS headers, so any NATS client can publish to a trimicro subscriber."""

    scheme = "nats"

    def __init__(self, client: NatsClient) -> None:
        self.client = client

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str = "application/cbor",
    ) -> None:
        validate_topic(topic)
        headers = {**(metadata or {}), "Content-Type": content_type}
        await self.client.publish(topic, body, headers=headers)

    @asynccontextmanager
    async def subscribe(
        self, topic: str, *, queue: str | None = None
    ) -> AsyncIterator[AsyncIterator[BrokerMessage]]:
        validate_topic(topic)
        async with self.client.subscribe(topic, queue=queue) as messages:
            yield _as_broker_messages(topic, messages)


async def _as_broker_messages(
    topic: str, messages: trio.MemoryReceiveChannel[Msg]
) -> AsyncIterator[BrokerMessage]:
    async for msg in messages:
        headers = {k: v[-1] for k, v in (msg.headers or {}).items()}
        content_type = headers.pop("Content-Type", DEFAULT_CONTENT_TYPE)
        yield BrokerMessage(topic, msg.payload, headers, content_type)


@asynccontextmanager
async def open_nats_broker(
    url: str, *, rng: random.Random | None = None, **_: object
) -> AsyncIterator[NatsBroker]:
    async with open_nats(url, rng=rng) as client:
        yield NatsBroker(client)
