"""The tunnel on trio: `open_tunnel(...)` drives a `TunnelCore` over a `Transport`.

The tunnel's nursery owns every task: the listener (when `address` is given), one keeper per
configured peer (dial, run the link, back off and redial), one reader and one writer per link,
and one timer task that fires the core's keepalives, discovers, announces, expiries and dial
timeouts. Links we dialled and links we accepted are the same to the core: sessions flow both
ways on either, so a node behind NAT dials out once and serves over that link.

Each link has a send queue (`LINK_QUEUE` messages): a session's `send` waits while its
links' queues are full, and the time messages wait there is the link's queue delay metric.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import attrs
import trio

from ...nursery import Backoff, open_owned_nursery
from .._base import ConnectError, Connection, SessionError, Transport
from ._core import SessionGone, TunnelCore, TunnelOptions, TunnelStatistics
from ._events import (
    ChannelsAnnounced,
    DialFailed,
    Event,
    LinkDown,
    LinkUp,
    SessionAccepted,
    SessionClosed,
    SessionData,
    SessionKey,
    SessionOpened,
)
from ._messages import Mode
from ._session import SESSION_STALL, TunnelListener, TunnelSession

__all__ = ["DialError", "Tunnel", "open_tunnel"]

log = logging.getLogger("trimicro.session.tunnel")

#: Messages queued for one link before senders wait.
LINK_QUEUE = 128
#: How long a closing link may take to send what is queued (its close message).
CLOSE_FLUSH = 1.0
#: Redial of a configured peer: full jitter up to 5 s (go-micro's ReconnectTime).
RECONNECT = Backoff(base=1.0, cap=5.0)


class DialError(ConnectError):
    """No session could be opened on the channel (nobody answered, refused, timed out)."""


_MODES = {"unicast": Mode.UNICAST, "multicast": Mode.MULTICAST, "broadcast": Mode.BROADCAST}


@attrs.define(eq=False)
class _LinkIO:
    id: str
    conn: Connection
    queue: deque[tuple[float, dict[str, Any]]] = attrs.field(factory=deque)
    writable: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)
    drained: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)
    closing: str | None = None
    up: bool = False
    writing: bool = False  # the writer is sending what it took from `queue`
    # A link on QUIC is flushed by its connection right before it builds packets (no hop
    # through the writer task, and what was queued meanwhile leaves as one batch).
    flush: Callable[[], None] | None = None  # set by the tunnel: the callback, one object
    before_transmit: Callable[[Callable[[], None]], bool] | None = attrs.field(
        default=attrs.Factory(
            lambda io: getattr(io.conn, "call_before_transmit", None), takes_self=True
        )
    )
    send_nowait: Callable[[dict[str, Any]], bool] | None = attrs.field(
        default=attrs.Factory(lambda io: getattr(io.conn, "send_nowait", None), takes_self=True)
    )


@attrs.define(eq=False)
class _Pending:
    done: trio.Event = attrs.field(factory=trio.Event)
    error: str | None = None


class Tunnel:
    """A running tunnel; see `open_tunnel`."""

    def __init__(
        self,
        transport: Transport,
        core: TunnelCore,
        nursery: trio.Nursery,
        rng: random.Random,
        reconnect: Backoff,
    ) -> None:
        self._transport = transport
        self._core = core
        self._nursery = nursery
        self._rng = rng
        self._reconnect = reconnect
        self.address: str | None = None
        self._ios: dict[str, _LinkIO] = {}
        self._sessions: dict[SessionKey, TunnelSession] = {}
        self._listeners: dict[str, TunnelListener] = {}
        self._pending: dict[SessionKey, _Pending] = {}
        self._full: set[TunnelSession] = set()  # sessions whose reader is behind
        self._congested: set[_LinkIO] = set()  # links with `LINK_QUEUE` messages queued
        self._link_ids = itertools.count(1)
        self._links_changed = trio.lowlevel.ParkingLot()
        self._channels_changed = trio.lowlevel.ParkingLot()
        self._timer_wakeup = trio.Event()
        self._armed = float("inf")

    @property
    def id(self) -> str:
        return self._core.id

    def __repr__(self) -> str:
        return f"<Tunnel {self.id} {len(self._core.links_up())} links>"

    # -- public API ------------------------------------------------------------------------

    async def dial(  # the timeout is the core's dial deadline, not a trio scope:
        self,  # past it the core also tells a late acceptor to drop the session
        channel: str,
        *,
        mode: str = "unicast",
        timeout: float | None = None,  # noqa: ASYNC109
        link: str | None = None,
    ) -> TunnelSession:
        """Open a session on `channel`. Unicast waits for a listener to accept (raises
        `DialError` after `timeout`, default the options' 5 s); multicast and broadcast
        return at once and reach whoever listens when data is sent. `link` (unicast): open
        on that link (an id from `links()`/`announced()`) and on no other."""
        kind = _MODES.get(mode)
        if kind is None:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, not {mode!r}")
        key = self._core.dial(channel, kind, trio.current_time(), timeout=timeout, link=link)
        session = self._sessions[key] = TunnelSession(self, key, channel, kind)
        pending = self._pending[key] = _Pending()
        self._pump()
        try:
            await pending.done.wait()
        except BaseException:
            self._pending.pop(key, None)
            self._close_session(session)
            raise
        if pending.error is not None:
            self._sessions.pop(key, None)
            raise DialError(f"cannot open a session on {channel!r}: {pending.error}")
        return session

    def listen(self, channel: str) -> TunnelListener:
        """Accept sessions on `channel` (announced to every peer now and every 30 s)."""
        if channel in self._listeners:
            raise ValueError(f"already listening on {channel!r}")
        listener = self._listeners[channel] = TunnelListener(self, channel)
        self._core.listen(channel, trio.current_time())
        self._pump()
        return listener

    def statistics(self) -> TunnelStatistics:
        """Links with their metrics (RTT, queue delay, errors, state) and session counts."""
        return self._core.statistics()

    def links(self) -> list[str]:
        return self._core.links_up()

    def announced(self) -> dict[str, list[str]]:
        """Channel → the up links whose peer announced it (a listener is there)."""
        return self._core.announced()

    def listening(self) -> set[str]:
        """The channels this node listens on."""
        return self._core.listening()

    async def wait_announced(self) -> None:
        """Wait until a peer announces a channel new on its link, or a link comes or goes."""
        await self._channels_changed.park()

    async def wait_links(self, count: int = 1) -> None:
        """Wait until at least `count` links are up."""
        while len(self._core.links_up()) < count:
            await self._links_changed.park()

    def keep_peer(self, address: str) -> None:
        """Dial `address` and keep it dialled (with backoff), as the `peers` given at start."""
        self._nursery.start_soon(self._keep_peer, address)

    async def connect(self, address: str) -> None:
        """Dial `address` once and keep that link until it ends (no redial)."""
        conn = await self._transport.connect(self._nursery, address)
        self._nursery.start_soon(self._run_link, conn, True, address)

    # -- links -----------------------------------------------------------------------------

    async def _serve_link(self, conn: Connection) -> None:
        await self._run_link(conn, False, conn.peer)

    async def _keep_peer(self, address: str) -> None:
        attempt = 0
        while True:
            try:
                conn = await self._transport.connect(self._nursery, address)
            except SessionError as exc:
                log.info("tunnel %s: cannot reach peer %s: %s", self.id, address, exc)
            else:
                if await self._run_link(conn, True, address):
                    attempt = 0
            await trio.sleep(self._reconnect.delay(attempt, self._rng))
            attempt += 1

    async def _run_link(self, conn: Connection, dialled: bool, address: str) -> bool:
        """Run one link until it ends; True if it came up."""
        link_id = f"{'out' if dialled else 'in'}-{next(self._link_ids)}:{conn.peer}"
        io = self._ios[link_id] = _LinkIO(link_id, conn)
        if io.before_transmit is not None and io.send_nowait is not None:
            io.flush = functools.partial(self._flush, io)
        local_fp, remote_fp = _fingerprints(self._transport, conn, dialled, address)
        nonce = self._rng.getrandbits(128).to_bytes(16, "big")
        self._core.link_opened(
            link_id, dialled=dialled, nonce=nonce, now=trio.current_time(),
            local_fp=local_fp, remote_fp=remote_fp,
        )  # fmt: skip
        self._pump()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, io)
                await self._write(io)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                self._core.link_lost(link_id, "the tunnel is closing", trio.current_time())
                self._pump()
                self._ios.pop(link_id, None)
                self._congested.discard(io)
                self._links_changed.unpark_all()
                await conn.aclose()
        return io.up

    async def _read(self, io: _LinkIO) -> None:
        try:
            while True:
                message = await io.conn.receive()
                now = trio.current_time()
                self._core.receive(io.id, message, now)
                self._pump(now)
                if self._full:
                    await self._relieve()
        except SessionError as exc:
            self._core.link_lost(io.id, f"connection ended: {exc}", trio.current_time())
            self._pump()

    async def _write(self, io: _LinkIO) -> None:
        """Send the link's queue in order; after `LinkDown`, flush briefly and return."""
        try:
            while io.closing is None:
                if not io.queue:
                    await io.writable.park()
                    continue
                await self._send_queued(io)
            with trio.move_on_after(CLOSE_FLUSH):
                while io.queue:
                    await self._send_queued(io)
        except SessionError as exc:
            self._core.link_lost(io.id, f"send failed: {exc}", trio.current_time())
            self._pump()

    async def _send_queued(self, io: _LinkIO) -> None:
        """Take everything queued and send it, consecutive session messages as one `batch`
        frame (what senders queued while the previous write was under way): framing and the
        QUIC write are paid once per batch. The queue delay sample is the oldest message's
        wait. Senders get room at once: at most `LINK_QUEUE` wait here and as many more are
        in this write."""
        frames = self._take_queue(io)
        io.writing = True
        try:
            for frame in frames:
                await io.conn.send(frame)
        finally:
            io.writing = False

    def _take_queue(self, io: _LinkIO) -> list[dict[str, Any]]:
        """Empty the link's queue into frames (session messages packed into batches), record
        the oldest message's wait as a queue delay sample and give waiting senders room."""
        queue = io.queue
        self._core.record_queue_delay(io.id, trio.current_time() - queue[0][0])
        messages = [message for _, message in queue]
        queue.clear()
        self._congested.discard(io)
        if len(io.drained):
            io.drained.unpark_all()
        return self._core.pack(io.id, messages)

    def _flush(self, io: _LinkIO) -> None:
        """Called by the link's QUIC connection right before it builds packets: send what
        was queued since (one batch for the messages of those scheduling rounds). What
        the connection cannot take now goes back to the queue, for the writer task."""
        if io.writing or not io.queue:
            return  # the writer is at it: it takes the queue after its write
        now = trio.current_time()
        frames = self._take_queue(io)
        for i, frame in enumerate(frames):
            assert io.send_nowait is not None
            try:
                sent = io.send_nowait(frame)
            except SessionError:
                sent = False  # the writer meets the same error and ends the link
            if not sent:
                io.queue.extendleft((now, rest) for rest in reversed(frames[i:]))
                if len(io.writable):
                    io.writable.unpark_all()
                return

    # -- the pump: core output → link queues, events → sessions ---------------------------

    def _pump(self, now: float | None = None) -> None:
        if now is None:
            now = trio.current_time()
        core, ios, sessions = self._core, self._ios, self._sessions
        while True:
            for link_id, message in core.messages_to_send():
                io = ios.get(link_id)
                if io is not None:
                    self._enqueue(io, message, now)
            events = core.take_events()
            if not events:
                break
            for event in events:
                if type(event) is SessionData:  # the hot path, inline
                    session = sessions.get(event.key)
                    if session is not None and session._deliver(event.data):
                        self._full.add(session)
                else:
                    self._on_event(event)
        if core.get_timer() < self._armed:
            self._timer_wakeup.set()

    def _enqueue(self, io: _LinkIO, message: dict[str, Any], now: float) -> None:
        """Queue a message for its link: flushed right before the link's QUIC connection
        next builds packets, else (not QUIC, or a write under way) by the link's writer."""
        io.queue.append((now, message))
        if len(io.queue) >= LINK_QUEUE:
            self._congested.add(io)
        if io.writing:
            return  # the writer takes the queue after its write
        if io.flush is not None and io.before_transmit is not None and io.before_transmit(io.flush):
            return
        if len(io.writable):
            io.writable.unpark_all()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, SessionAccepted):
            self._on_accepted(event)
        elif isinstance(event, SessionOpened | DialFailed):
            pending = self._pending.pop(event.key, None)
            if pending is not None:
                pending.error = event.reason if isinstance(event, DialFailed) else None
                pending.done.set()
        elif isinstance(event, SessionClosed):
            session = self._sessions.pop(event.key, None)
            if session is not None:
                session._end(event.reason, broken=event.broken)
        elif isinstance(event, LinkUp | LinkDown):
            self._on_link_event(event)
        elif isinstance(event, ChannelsAnnounced):
            self._channels_changed.unpark_all()

    def _on_link_event(self, event: LinkUp | LinkDown) -> None:
        io = self._ios.get(event.link)
        if isinstance(event, LinkUp):
            log.info("tunnel %s: link %s up (peer %s)", self.id, event.link, event.peer)
            if io is not None:
                io.up = True
        else:
            level = logging.WARNING if "token" in event.reason else logging.INFO
            log.log(level, "tunnel %s: link %s closed: %s", self.id, event.link, event.reason)
            if io is not None:
                io.closing = event.reason
                io.writable.unpark_all()
                io.drained.unpark_all()
        self._links_changed.unpark_all()
        self._channels_changed.unpark_all()

    async def _relieve(self) -> None:
        """Wait (back-pressure) while sessions' readers are behind; a reader stuck for
        `SESSION_STALL` seconds loses its session instead of stalling the link."""
        for session in list(self._full):
            with trio.move_on_after(SESSION_STALL):
                await session._wait_room()
            self._full.discard(session)
            if session._full:
                reason = f"receive queue full for {SESSION_STALL:g} s: the reader is stuck"
                self._sessions.pop(session.key, None)
                self._core.close_session(session.key, trio.current_time(), reason)
                session._end(reason, broken=True)
                self._pump()

    def _on_accepted(self, event: SessionAccepted) -> None:
        session = TunnelSession(self, event.key, event.channel, event.mode)
        listener = self._listeners.get(event.channel)
        if listener is None or not listener._offer(session):
            self._core.close_session(event.key, trio.current_time(), "listener backlog full")
            return
        self._sessions[event.key] = session

    # -- used by sessions and listeners ----------------------------------------------------

    async def _send(self, session: TunnelSession, data: bytes) -> None:
        """Wait for room on the session's links (cancellable: nothing is sent yet), then
        queue the data and yield without raising — a send cancelled there was sent. Only a
        loopback to a reader that is behind waits after queueing."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._congested:
            await self._backpressure(self._core.send_links(session.key))
        now = trio.current_time()
        core = self._core
        try:
            links = core.send(session.key, data, now)
        except SessionGone as exc:
            raise trio.BrokenResourceError(str(exc)) from None
        if core.has_events:  # looped back: the full pump
            self._pump(now)
        else:  # sending data moves no timer: just hand the messages to their links
            for link_id, message in core.messages_to_send():
                io = self._ios.get(link_id)
                if io is not None:
                    self._enqueue(io, message, now)
        if self._full and not links:  # looped back to a reader that is behind
            await self._relieve()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _backpressure(self, links: Iterable[str]) -> None:
        for link_id in links:
            io = self._ios.get(link_id)
            while io is not None and io.closing is None and len(io.queue) >= LINK_QUEUE:
                await io.drained.park()

    def _close_session(self, session: TunnelSession) -> None:
        self._sessions.pop(session.key, None)
        self._core.close_session(session.key, trio.current_time())
        self._pump()

    def _unlisten(self, listener: TunnelListener) -> None:
        if self._listeners.get(listener.channel) is listener:
            del self._listeners[listener.channel]
            self._core.unlisten(listener.channel, trio.current_time())
            self._pump()

    async def _run_timers(self) -> None:
        while True:
            self._armed = self._core.get_timer()
            self._timer_wakeup = trio.Event()
            with trio.move_on_at(self._armed):
                await self._timer_wakeup.wait()
            now = trio.current_time()
            if now >= self._core.get_timer():
                self._core.handle_timer(now)
                self._pump()

    async def _close(self) -> None:
        for link_id in list(self._ios):
            self._core.close_link(link_id, "the tunnel is closing", trio.current_time())
        self._pump()
        with trio.move_on_after(CLOSE_FLUSH):
            while self._ios:
                await self._links_changed.park()


def _fingerprints(
    transport: Transport, conn: Connection, dialled: bool, address: str
) -> tuple[str, str]:
    """(ours, theirs) TLS certificate fingerprints for the auth proof ("" where none)."""
    if not dialled:
        identity = getattr(transport, "identity", None)
        return (getattr(identity, "cert_sha256", "") or "", "")
    pin = dict(parse_qsl(address.partition("?")[2])).get("cert_sha256")
    return ("", (pin or _peer_certificate_fingerprint(conn)).lower())


def _peer_certificate_fingerprint(conn: Connection) -> str:
    """The QUIC peer's certificate fingerprint, when the connection is a QUIC one."""
    quic = getattr(getattr(getattr(conn, "_stream", None), "_host", None), "quic", None)
    certificate = getattr(quic, "peer_certificate", None)
    if certificate is None:
        return ""
    from .._quic_tls import fingerprint

    return fingerprint(certificate)


@asynccontextmanager
async def open_tunnel(
    transport: Transport,
    *,
    address: str | None = None,
    peers: Iterable[str] = (),
    token: str | None = None,
    id: str | None = None,
    rng: random.Random | None = None,
    options: TunnelOptions | None = None,
    reconnect: Backoff = RECONNECT,
) -> AsyncIterator[Tunnel]:
    """Run a tunnel over `transport` for the duration of the block.

    `address`: listen for links there (`tunnel.address` is the bound one); `peers`:
    addresses to dial and keep dialled (with backoff); `token`: the network token both ends
    must prove they know. A node behind NAT gives only `peers`; sessions flow both ways.
    """
    rng = rng or random.Random()
    tunnel_id = id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    core = TunnelCore(tunnel_id, token=token, options=options)
    async with open_owned_nursery() as nursery:
        tunnel = Tunnel(transport, core, nursery, rng, reconnect)
        nursery.start_soon(tunnel._run_timers)
        if address is not None:
            tunnel.address = await nursery.start(transport.serve, tunnel._serve_link, address)
        for peer in peers:
            nursery.start_soon(tunnel._keep_peer, peer)
        try:
            yield tunnel
        finally:
            with trio.CancelScope(shield=True):
                await tunnel._close()
            nursery.cancel_scope.cancel()
