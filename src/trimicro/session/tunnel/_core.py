"""The tunnel's state machine (sans-io): links, channels and sessions.

Fed link lifecycle, received messages and `now`; returns messages per link, events and a
timer, in the project's driving shape:

    core.link_opened(link, dialled=..., nonce=..., now=now)   # a connection exists
    core.receive(link, raw_message, now)                       # a message arrived on it
    core.link_lost(link, reason, now)                          # its connection broke
    core.listen(channel, now); core.unlisten(channel, now)
    key = core.dial(channel, mode, now, timeout=..., link=...)  # → SessionOpened | DialFailed
    core.send(key, data, now); core.close_session(key, now)
    core.messages_to_send()                                    # → [(link, message map)]
    core.next_event()                                          # → Event | None
    core.take_events()                                         # → [Event]: all of them
    core.get_timer(); core.handle_timer(now)

A link is up once both `connect`s (and, with a token, both `auth` proofs) are in; nothing
else is accepted before that. Unicast picks the healthy link with the lowest RTT + queue
delay among those that announced the channel, else discovers and pins the first link to
answer; the session then stays on that link. Multicast goes to the links that announced the
channel, broadcast to every link; a listener gets one accepted session per (link, session).
A dial of a channel this node listens on is looped back without a link.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any

import attrs

from ...codec import DEFAULT_LIMITS
from . import _auth
from ._events import (
    LOOPBACK,
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
from ._link import Link, LinkStatistics
from ._messages import (
    MAX_ANNOUNCE,
    Accept,
    Announce,
    Auth,
    Batch,
    Close,
    Connect,
    Data,
    Discover,
    Keepalive,
    MalformedMessage,
    Message,
    Mode,
    Open,
    decode,
    decode_session,
    encode,
    encode_data,
    pack,
)

__all__ = ["SessionGone", "TunnelCore", "TunnelOptions", "TunnelStatistics"]

_KINDS = (Connect, Auth, Close, Keepalive, Discover, Announce, Open, Accept, Data, Batch)


class SessionGone(Exception):
    """The session is closed or was never open; the text says why."""


@attrs.frozen
class TunnelOptions:
    """Timers (seconds) and limits. The timer defaults are go-micro's (DESIGN.md §6)."""

    keepalive_interval: float = 30.0
    #: Nothing received for this long: the link is dead (2.5 keepalive intervals).
    dead_after: float = 75.0
    discover_interval: float = 60.0
    announce_interval: float = 30.0
    mapping_expiry: float = 120.0
    dial_timeout: float = 5.0
    #: A link whose connect (and auth) is not complete by then is closed.
    handshake_timeout: float = 5.0
    max_sessions_per_link: int = 1024
    max_channels_per_link: int = 1024
    #: Most bytes one session message may carry: a link frame holds it with room to spare
    #: for the envelope (the transports' default frame limit is 4 MiB). A larger `send` is
    #: refused (ValueError) instead of reaching the link, where it would end the link.
    max_message: int = DEFAULT_LIMITS.max_frame_size - 1024


@attrs.frozen
class TunnelStatistics:
    id: str
    links: tuple[LinkStatistics, ...]
    listening: int
    sessions_dialled: int  # open or opening now
    sessions_accepted: int  # open now
    dials: int
    dials_failed: int
    sessions_refused: int  # over a link's session cap, or no listener
    channels_refused: int  # announces over a link's channel cap
    malformed: int  # links closed for a malformed message
    auth_failures: int
    data_dropped: int  # session data for no known session


@attrs.define
class _Dialled:
    channel: str
    mode: Mode
    deadline: float
    state: str = "discover"  # discover → opening → open
    link: str | None = None  # the pinned link (unicast), LOOPBACK when looped back
    sent_at: float = 0.0  # when the discover/open went out: an RTT sample
    reached: set[str] = attrs.field(factory=set)  # multicast/broadcast: links sent to
    only: str | None = None  # unicast on this link only (the caller chose it)


@attrs.define
class _Accepted:
    channel: str
    mode: Mode
    link: str


@attrs.define
class _Counters:
    dials: int = 0
    dials_failed: int = 0
    sessions_refused: int = 0
    channels_refused: int = 0
    malformed: int = 0
    auth_failures: int = 0
    data_dropped: int = 0


class TunnelCore:
    """One tunnel's links and sessions; see the module docstring for how to drive it."""

    def __init__(
        self, id: str, *, token: str | None = None, options: TunnelOptions | None = None
    ) -> None:
        self.id = id
        self.options = options or TunnelOptions()
        self._token = token or None
        self._links: dict[str, Link] = {}
        self._listening: set[str] = set()
        self._dialled: dict[int, _Dialled] = {}
        self._accepted: dict[SessionKey, _Accepted] = {}
        self._discovering: dict[str, set[int]] = {}  # channel → sids waiting for an announce
        self._sids = itertools.count(1)
        self._deadlines: list[tuple[float, int]] = []  # (deadline, sid) of pending dials
        self._expiries: list[tuple[float, str, str]] = []  # (when, link, channel)
        self._next_announce = math.inf
        self._outgoing: list[tuple[str, dict[str, Any]]] = []
        # get_timer's answer, kept while only session data flows (None: work it out again).
        # Data moves no timer earlier (receiving one only pushes the dead-link timer later),
        # so a kept answer may be early, never late: the driver then wakes for nothing once.
        self._timer: float | None = None
        self._events: list[Event] = []
        self._counters = _Counters()
        self._handlers: dict[type[Any], Any] = {
            kind: getattr(self, f"_on_{kind.__name__.lower()}") for kind in _KINDS
        }

    # --- driving -------------------------------------------------------------------------

    def messages_to_send(self) -> list[tuple[str, dict[str, Any]]]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def take_events(self) -> list[Event]:
        """Every event waiting, oldest first (`next_event` until None, in one call)."""
        events, self._events = self._events, []
        return events

    def get_timer(self) -> float:
        if self._timer is None:
            self._timer = self._earliest_timer()
        return self._timer

    def _earliest_timer(self) -> float:
        timers = [self._next_announce]
        for link in self._links.values():
            if link.up:
                timers += [link.next_keepalive, link.next_discover,
                           link.last_received + self.options.dead_after]  # fmt: skip
            else:
                timers.append(link.opened_at + self.options.handshake_timeout)
        if self._deadlines:
            timers.append(self._deadlines[0][0])
        if self._expiries:
            timers.append(self._expiries[0][0])
        return min(timers)

    def handle_timer(self, now: float) -> None:
        self._timer = None
        for link in list(self._links.values()):
            self._link_timers(link, now)
        if now >= self._next_announce:
            self._announce_all(now)
        self._expire_mappings(now)
        self._expire_dials(now)

    def _link_timers(self, link: Link, now: float) -> None:
        opts = self.options
        if not link.up:
            if now >= link.opened_at + opts.handshake_timeout:
                self._drop(link, f"no connect within {opts.handshake_timeout:g} s", now)
            return
        if now >= link.last_received + opts.dead_after:
            self._drop(link, f"nothing received for {opts.dead_after:g} s (keepalive)", now)
            return
        if now >= link.next_keepalive:
            self._send(link, Keepalive(link.new_probe(now)))
            link.next_keepalive = now + opts.keepalive_interval
        if now >= link.next_discover:
            self._send(link, Discover())
            link.next_discover = now + opts.discover_interval

    # --- links ---------------------------------------------------------------------------

    def link_opened(
        self,
        link_id: str,
        *,
        dialled: bool,
        nonce: bytes,
        now: float,
        local_fp: str = "",
        remote_fp: str = "",
    ) -> None:
        """A connection to another tunnel exists (we dialled it, or accepted it)."""
        if not link_id or link_id in self._links:
            raise ValueError(f"link id {link_id!r} is empty or in use")
        link = Link(link_id, dialled, nonce, now, local_fp, remote_fp, last_received=now)
        self._timer = None
        self._links[link_id] = link
        self._send(link, Connect(self.id, nonce, auth=self._token is not None, batch=True))

    def link_lost(self, link_id: str, reason: str, now: float) -> None:
        """The link's connection broke or ended."""
        link = self._links.get(link_id)
        if link is not None:
            self._drop(link, reason, now, notify_peer=False)

    def close_link(self, link_id: str, reason: str, now: float) -> None:
        """Close a link from this side (the peer is told why)."""
        link = self._links.get(link_id)
        if link is not None:
            self._drop(link, reason, now)

    def link(self, link_id: str) -> Link | None:
        return self._links.get(link_id)

    def links_up(self) -> list[str]:
        return [link.id for link in self._links.values() if link.up]

    def pack(self, link_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the driver took from a link's send queue → the frames to send, in order:
        consecutive session messages as one `batch` when the peer decodes batches."""
        link = self._links.get(link_id)
        return pack(messages) if link is not None and link.peer_batch else messages

    def record_queue_delay(self, link_id: str, seconds: float) -> None:
        """The driver measured how long a message waited in the link's send queue."""
        link = self._links.get(link_id)
        if link is not None:
            link.queue_sample(seconds)

    def _drop(self, link: Link, reason: str, now: float, *, notify_peer: bool = True) -> None:
        self._timer = None
        if notify_peer:
            self._send(link, Close(reason))
        del self._links[link.id]
        for key in list(link.sessions):
            self._session_lost_link(key, link, reason, now)
        for dialled in self._dialled.values():
            dialled.reached.discard(link.id)
        self._events.append(LinkDown(link.id, reason))

    def _session_lost_link(self, key: SessionKey, link: Link, reason: str, now: float) -> None:
        if not key.dialled:
            if self._accepted.pop(key, None) is not None:
                self._events.append(SessionClosed(key, f"link down: {reason}", broken=True))
            return
        session = self._dialled.get(key.sid)
        if session is None:
            return
        if session.state == "open":
            del self._dialled[key.sid]
            self._events.append(SessionClosed(key, f"link down: {reason}", broken=True))
        else:  # still opening: try another link within the same dial timeout
            session.link = None
            self._start_unicast(key.sid, session, now)

    # --- receiving -----------------------------------------------------------------------

    def receive(self, link_id: str, raw: Any, now: float) -> None:
        """A message arrived on a link. A malformed one closes that link only."""
        link = self._links.get(link_id)
        if link is None:
            return  # late: the link was dropped while this was in flight
        link.last_received = now
        link.messages_in += 1
        try:
            if link.up and type(raw) is dict and raw.get("t") == "session":
                # The hot path: session data, checked as `decode` does but no `Data` built.
                channel, sid, mine, mode, data = decode_session(raw)
                key = self._data_key(link, channel, sid, mine, mode)
                if key is not None:
                    self._events.append(SessionData(key, data))
                return
            message = decode(raw)
        except MalformedMessage as exc:
            self._counters.malformed += 1
            self._drop(link, f"malformed message: {exc}", now)
            return
        if not link.up and not isinstance(message, Connect | Auth | Close):
            self._drop(link, f"{type(message).__name__.lower()} before the link was up", now)
            return
        kind = type(message)
        if kind is not Data and kind is not Batch:
            self._timer = None
        self._handlers[kind](link, message, now)

    def _on_connect(self, link: Link, msg: Connect, now: float) -> None:
        if link.peer_nonce is not None:
            self._drop(link, "second connect on the link", now)
            return
        if msg.id == self.id:
            self._drop(link, "loopback link: this tunnel dialled itself", now)
            return
        link.peer, link.peer_nonce, link.peer_batch = msg.id, msg.nonce, msg.batch
        if self._token is None and msg.auth:
            self._counters.auth_failures += 1
            self._drop(link, "peer requires a network token; none is set here", now)
            return
        if self._token is not None and not msg.auth:
            self._counters.auth_failures += 1
            self._drop(link, "peer has no network token; one is required here", now)
            return
        if self._token is None:
            self._link_up(link, now)
            return
        self._send(link, Auth(self._proof(link, prover_dialled=link.dialled)))

    def _on_auth(self, link: Link, msg: Auth, now: float) -> None:
        if self._token is None or link.peer_nonce is None or link.up:
            self._drop(link, "unexpected auth message", now)
            return
        expected = self._proof(link, prover_dialled=not link.dialled)
        if not _auth.verify(expected, msg.proof):
            self._counters.auth_failures += 1
            self._drop(link, "network token mismatch: the peer's proof is wrong", now)
            return
        self._link_up(link, now)

    def _proof(self, link: Link, *, prover_dialled: bool) -> bytes:
        assert self._token is not None and link.peer_nonce is not None
        ours, theirs = (link.nonce, link.peer_nonce)
        dialler_nonce, listener_nonce = (ours, theirs) if link.dialled else (theirs, ours)
        mine_fp, peer_fp = link.local_fp, link.remote_fp
        dialler_fp, listener_fp = (mine_fp, peer_fp) if link.dialled else (peer_fp, mine_fp)
        return _auth.proof(
            self._token, prover_dialled=prover_dialled, dialler_nonce=dialler_nonce,
            listener_nonce=listener_nonce, dialler_fp=dialler_fp, listener_fp=listener_fp,
        )  # fmt: skip

    def _link_up(self, link: Link, now: float) -> None:
        link.up, link.up_since = True, now
        self._events.append(LinkUp(link.id, link.peer))
        self._send(link, Keepalive(link.new_probe(now)))  # the first RTT probe
        link.next_keepalive = now + self.options.keepalive_interval
        self._send(link, Discover())
        link.next_discover = now + self.options.discover_interval
        self._announce(link, sorted(self._listening), None)
        for channel, sids in self._discovering.items():
            for sid in sorted(sids):
                self._send(link, Discover(channel, sid))

    def _on_close(self, link: Link, msg: Close, now: float) -> None:
        if msg.sid is None and not msg.channel:
            self._drop(link, f"closed by peer: {msg.reason}", now, notify_peer=False)
            return
        if msg.sid is None:
            link.channels.pop(msg.channel, None)
            return
        if msg.mine:
            key = SessionKey(link.id, msg.sid)
            if self._accepted.pop(key, None) is not None:
                link.sessions.discard(key)
                self._events.append(SessionClosed(key, f"closed by peer: {msg.reason}"))
            return
        self._close_from_acceptor(link, msg, now)

    def _close_from_acceptor(self, link: Link, msg: Close, now: float) -> None:
        assert msg.sid is not None
        session, key = self._dialled.get(msg.sid), SessionKey(None, msg.sid)
        if session is None or session.mode is not Mode.UNICAST or session.link != link.id:
            return
        del self._dialled[msg.sid]
        link.sessions.discard(key)
        if session.state == "open":
            self._events.append(SessionClosed(key, f"closed by peer: {msg.reason}"))
        else:
            self._counters.dials_failed += 1
            self._events.append(DialFailed(key, f"refused by {link.peer}: {msg.reason}"))

    def _on_keepalive(self, link: Link, msg: Keepalive, now: float) -> None:
        if msg.echo:
            link.echo(msg.seq, now)
        else:
            self._send(link, Keepalive(msg.seq, echo=True))

    def _on_discover(self, link: Link, msg: Discover, now: float) -> None:
        if not msg.channel:
            self._announce(link, sorted(self._listening), None)
        elif msg.channel in self._listening:
            self._announce(link, [msg.channel], msg.sid)

    def _on_announce(self, link: Link, msg: Announce, now: float) -> None:
        expires = now + self.options.mapping_expiry
        new: list[str] = []
        for channel in msg.channels:
            if channel not in link.channels:
                if len(link.channels) >= self.options.max_channels_per_link:
                    self._counters.channels_refused += 1
                    continue
                new.append(channel)
            link.channels[channel] = now
            heapq.heappush(self._expiries, (expires, link.id, channel))
        if new:
            self._events.append(ChannelsAnnounced(link.id, tuple(new)))
        if msg.sid is not None and link.rtt is None:
            pending = self._dialled.get(msg.sid)
            if pending is not None and pending.state == "discover":
                link.rtt_sample(now - pending.sent_at)
        for channel in msg.channels:
            for sid in sorted(self._discovering.pop(channel, ())):
                self._open_on(link, sid, self._dialled[sid], now)

    def _on_open(self, link: Link, msg: Open, now: float) -> None:
        key = SessionKey(link.id, msg.sid)
        if key in self._accepted:
            return  # a duplicate open
        if msg.channel not in self._listening:
            self._refuse(link, msg.sid, f"no listener for {msg.channel!r}")
            return
        if not self._admit(link, key, msg.channel, Mode.UNICAST):
            return
        self._send(link, Accept(msg.sid))

    def _admit(self, link: Link, key: SessionKey, channel: str, mode: Mode) -> bool:
        if len(link.sessions) >= self.options.max_sessions_per_link:
            self._refuse(link, key.sid, "too many sessions on this link")
            return False
        self._accepted[key] = _Accepted(channel, mode, link.id)
        link.sessions.add(key)
        self._events.append(SessionAccepted(key, channel, mode))
        return True

    def _refuse(self, link: Link, sid: int, reason: str) -> None:
        self._counters.sessions_refused += 1
        self._send(link, Close(reason, sid=sid, mine=False))

    def _on_accept(self, link: Link, msg: Accept, now: float) -> None:
        session = self._dialled.get(msg.sid)
        if session is None or session.state != "opening" or session.link != link.id:
            # Not ours (any more): tell the acceptor, so it does not keep the session.
            self._send(link, Close("no such session", sid=msg.sid, mine=True))
            return
        if link.rtt is None:
            link.rtt_sample(now - session.sent_at)
        session.state = "open"
        self._events.append(SessionOpened(SessionKey(None, msg.sid)))

    def _on_data(self, link: Link, msg: Data, now: float) -> None:
        key = self._data_key(link, msg.channel, msg.sid, msg.mine, msg.mode)
        if key is not None:
            self._events.append(SessionData(key, msg.data))

    def _on_batch(self, link: Link, msg: Batch, now: float) -> None:
        """Each run as that many `session` messages, in order."""
        events = self._events
        for channel, sid, mine, mode, payloads in msg.runs:
            link.messages_in += len(payloads)
            key = self._data_key(link, channel, sid, mine, mode)
            if key is None:
                self._counters.data_dropped += len(payloads) - 1
                continue
            for data in payloads:
                events.append(SessionData(key, data))
        link.messages_in -= 1  # `receive` counted the frame

    def _data_key(
        self, link: Link, channel: str, sid: int, mine: bool, mode: Mode
    ) -> SessionKey | None:
        """The session data on `link` is for (accepting it on first data for multicast and
        broadcast); None: dropped (counted; an unknown unicast session is told to close)."""
        if not mine:
            session = self._dialled.get(sid)
            if (
                session is None
                or session.state != "open"
                or (session.mode is Mode.UNICAST and session.link != link.id)
            ):
                self._counters.data_dropped += 1
                return None
            return SessionKey(None, sid)
        key = SessionKey(link.id, sid)
        if key not in self._accepted:
            if mode is Mode.UNICAST or channel not in self._listening:
                self._counters.data_dropped += 1
                if mode is Mode.UNICAST:
                    self._send(link, Close("no such session", sid=sid, mine=False))
                return None
            if not self._admit(link, key, channel, mode):
                return None
        return key

    # --- channels ------------------------------------------------------------------------

    def listen(self, channel: str, now: float) -> None:
        """Accept sessions on `channel`; peers learn of it by announce (now and every 30 s)."""
        self._timer = None
        self._listening.add(channel)
        for link in self._up_links():
            self._announce(link, [channel], None)
        if self._next_announce == math.inf:
            self._next_announce = now + self.options.announce_interval

    def unlisten(self, channel: str, now: float) -> None:
        if channel not in self._listening:
            return
        self._timer = None
        self._listening.discard(channel)
        for link in self._up_links():
            self._send(link, Close("not listening", channel=channel))
        if not self._listening:
            self._next_announce = math.inf

    def _announce(self, link: Link, channels: list[str], sid: int | None) -> None:
        for start in range(0, len(channels), MAX_ANNOUNCE):
            self._send(link, Announce(tuple(channels[start : start + MAX_ANNOUNCE]), sid))

    def _announce_all(self, now: float) -> None:
        channels = sorted(self._listening)
        for link in self._up_links():
            self._announce(link, channels, None)
        self._next_announce = now + self.options.announce_interval

    def _expire_mappings(self, now: float) -> None:
        expiry = self.options.mapping_expiry
        while self._expiries and self._expiries[0][0] <= now:
            _, link_id, channel = heapq.heappop(self._expiries)
            link = self._links.get(link_id)
            seen = link.channels.get(channel) if link is not None else None
            if link is not None and seen is not None and seen + expiry <= now:
                del link.channels[channel]

    def channels_of(self, link_id: str) -> set[str]:
        """The channels a link's peer announced (unexpired)."""
        link = self._links.get(link_id)
        return set(link.channels) if link is not None else set()

    def announced(self) -> dict[str, list[str]]:
        """Channel → the up links whose peer announced it (unexpired)."""
        mapping: dict[str, list[str]] = {}
        for link in self._up_links():
            for channel in link.channels:
                mapping.setdefault(channel, []).append(link.id)
        return mapping

    def listening(self) -> set[str]:
        """The channels this node listens on."""
        return set(self._listening)

    # --- dialling ------------------------------------------------------------------------

    def dial(
        self,
        channel: str,
        mode: Mode,
        now: float,
        *,
        timeout: float | None = None,
        link: str | None = None,
    ) -> SessionKey:
        """Open a session on `channel`. Unicast answers with `SessionOpened` or `DialFailed`
        (by `now + timeout`); multicast and broadcast are open at once. `link` (unicast
        only): open on that link, not the best one, and fail rather than move elsewhere."""
        if link is not None and mode is not Mode.UNICAST:
            raise ValueError("only a unicast dial can choose its link")
        self._timer = None
        sid = next(self._sids)
        key = SessionKey(None, sid)
        deadline = now + (self.options.dial_timeout if timeout is None else timeout)
        session = self._dialled[sid] = _Dialled(channel, mode, deadline, only=link)
        self._counters.dials += 1
        if mode is not Mode.UNICAST:
            session.state = "open"
            self._events.append(SessionOpened(key))
            if mode is Mode.MULTICAST and not self._links_with(channel):
                for each in self._up_links():
                    self._send(each, Discover(channel))
            return key
        if channel in self._listening and link in (None, LOOPBACK):
            session.state, session.link = "open", LOOPBACK
            self._accepted[SessionKey(LOOPBACK, sid)] = _Accepted(channel, mode, LOOPBACK)
            self._events.append(SessionAccepted(SessionKey(LOOPBACK, sid), channel, mode))
            self._events.append(SessionOpened(key))
            return key
        heapq.heappush(self._deadlines, (deadline, sid))
        self._start_unicast(sid, session, now)
        return key

    def _start_unicast(self, sid: int, session: _Dialled, now: float) -> None:
        if session.only is not None:
            link = self._links.get(session.only)
            if link is not None and link.up:
                self._open_on(link, sid, session, now)
                return
            self._forget_dial(sid, session, "the chosen link is gone")
            self._counters.dials_failed += 1
            reason = f"link {session.only!r} is not up"
            self._events.append(DialFailed(SessionKey(None, sid), reason))
            return
        candidates = self._links_with(session.channel)
        if candidates:
            best = min(candidates, key=lambda link: link.score)
            self._open_on(best, sid, session, now)
            return
        session.state, session.sent_at = "discover", now
        self._discovering.setdefault(session.channel, set()).add(sid)
        for link in self._up_links():
            self._send(link, Discover(session.channel, sid))

    def _open_on(self, link: Link, sid: int, session: _Dialled, now: float) -> None:
        session.state, session.link, session.sent_at = "opening", link.id, now
        link.sessions.add(SessionKey(None, sid))
        self._send(link, Open(session.channel, sid))

    def _links_with(self, channel: str) -> list[Link]:
        return [link for link in self._up_links() if channel in link.channels]

    def _up_links(self) -> list[Link]:
        return [link for link in self._links.values() if link.up]

    def _expire_dials(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, sid = heapq.heappop(self._deadlines)
            session = self._dialled.get(sid)
            if session is None or session.state == "open":
                continue
            self._forget_dial(sid, session, "no answer")
            self._counters.dials_failed += 1
            reason = f"no listener for {session.channel!r} answered within the dial timeout"
            self._events.append(DialFailed(SessionKey(None, sid), reason))

    def _forget_dial(self, sid: int, session: _Dialled, reason: str) -> None:
        del self._dialled[sid]
        waiting = self._discovering.get(session.channel)
        if waiting is not None:
            waiting.discard(sid)
            if not waiting:
                del self._discovering[session.channel]
        link = self._links.get(session.link or "")
        if link is not None:
            link.sessions.discard(SessionKey(None, sid))
            self._send(link, Close(reason, sid=sid, mine=True))

    # --- sessions ------------------------------------------------------------------------

    def send(self, key: SessionKey, data: bytes, now: float) -> list[str]:
        """Send on a session; returns the links the data went out on. Raises ValueError
        (nothing sent) when `data` is over `options.max_message` bytes."""
        if len(data) > self.options.max_message:
            raise ValueError(
                f"session data of {len(data)} bytes exceeds max_message "
                f"({self.options.max_message} bytes)"
            )
        if key.dialled:
            return self._send_dialled(key.sid, data)
        accepted = self._accepted.get(key)
        if accepted is None:
            raise SessionGone("the session is closed")
        if accepted.link == LOOPBACK:
            self._events.append(SessionData(SessionKey(None, key.sid), data))
            return []
        link = self._links[accepted.link]
        link.messages_out += 1
        self._outgoing.append(
            (link.id, encode_data(accepted.channel, key.sid, False, accepted.mode, data))
        )
        return [link.id]

    def send_links(self, key: SessionKey) -> list[str]:
        """The links a `send` on the session would use now (none: looped back or gone)."""
        if not key.dialled:
            accepted = self._accepted.get(key)
            return [] if accepted is None or accepted.link == LOOPBACK else [accepted.link]
        session = self._dialled.get(key.sid)
        if session is None or session.link == LOOPBACK:
            return []
        if session.mode is Mode.UNICAST:
            return [session.link] if session.link else []
        links = self._links_with(session.channel) if session.mode is Mode.MULTICAST else None
        return [link.id for link in (self._up_links() if links is None else links)]

    def _send_dialled(self, sid: int, data: bytes) -> list[str]:
        session = self._dialled.get(sid)
        if session is None or session.state != "open":
            raise SessionGone("the session is closed" if session is None else "not open yet")
        if session.link == LOOPBACK:
            self._events.append(SessionData(SessionKey(LOOPBACK, sid), data))
            return []
        if session.mode is Mode.UNICAST:  # the common case, without the general path's lists
            link = self._links[session.link or ""]
            link.messages_out += 1
            self._outgoing.append(
                (link.id, encode_data(session.channel, sid, True, Mode.UNICAST, data))
            )
            return [link.id]
        if session.mode is Mode.MULTICAST:
            targets = self._links_with(session.channel)
        else:
            targets = self._up_links()
        self._loop_back(sid, session, data)
        for link in targets:
            self._send(link, Data(session.channel, sid, True, session.mode, data))
            session.reached.add(link.id)
        return [link.id for link in targets]

    def _loop_back(self, sid: int, session: _Dialled, data: bytes) -> None:
        """Multicast and broadcast reach this node's own listener too."""
        if session.mode is Mode.UNICAST or session.channel not in self._listening:
            return
        key = SessionKey(LOOPBACK, sid)
        if key not in self._accepted:
            self._accepted[key] = _Accepted(session.channel, session.mode, LOOPBACK)
            self._events.append(SessionAccepted(key, session.channel, session.mode))
        self._events.append(SessionData(key, data))

    def close_session(self, key: SessionKey, now: float, reason: str = "closed") -> None:
        """Close a session from this side; the other side gets `SessionClosed`. Idempotent."""
        self._timer = None
        if key.dialled:
            session = self._dialled.get(key.sid)
            if session is not None:
                self._close_dialled(key.sid, session, reason)
            return
        accepted = self._accepted.pop(key, None)
        if accepted is None:
            return
        if accepted.link == LOOPBACK:
            self._close_loopback_peer(SessionKey(None, key.sid), reason)
            return
        link = self._links.get(accepted.link)
        if link is not None:
            link.sessions.discard(key)
            self._send(link, Close(reason, sid=key.sid, mine=False))

    def _close_dialled(self, sid: int, session: _Dialled, reason: str) -> None:
        if session.mode is Mode.UNICAST and session.link != LOOPBACK:
            self._forget_dial(sid, session, reason)  # tells the pinned link, if any
            return
        del self._dialled[sid]
        for link_id in sorted(session.reached):
            link = self._links.get(link_id)
            if link is not None:
                self._send(link, Close(reason, sid=sid, mine=True))
        self._close_loopback_peer(SessionKey(LOOPBACK, sid), reason)

    def _close_loopback_peer(self, key: SessionKey, reason: str) -> None:
        if key.dialled:
            if self._dialled.pop(key.sid, None) is not None:
                self._events.append(SessionClosed(key, f"closed by peer: {reason}"))
        elif self._accepted.pop(key, None) is not None:
            self._events.append(SessionClosed(key, f"closed by peer: {reason}"))

    def session_channel(self, key: SessionKey) -> str | None:
        if key.dialled:
            dialled = self._dialled.get(key.sid)
            return dialled.channel if dialled is not None else None
        accepted = self._accepted.get(key)
        return accepted.channel if accepted is not None else None

    def session_link(self, key: SessionKey) -> str | None:
        """The link a session rides on (None for multicast/broadcast or unknown)."""
        if key.dialled:
            dialled = self._dialled.get(key.sid)
            return dialled.link if dialled is not None else None
        accepted = self._accepted.get(key)
        return accepted.link if accepted is not None else None

    # --- output --------------------------------------------------------------------------

    def _send(self, link: Link, message: Message) -> None:
        link.messages_out += 1
        self._outgoing.append((link.id, encode(message)))

    def statistics(self) -> TunnelStatistics:
        links = tuple(link.statistics() for link in self._links.values())
        return TunnelStatistics(
            self.id, links, len(self._listening), len(self._dialled), len(self._accepted),
            **attrs.asdict(self._counters),
        )  # fmt: skip

    def check_invariants(self, now: float) -> None:
        """Assert the core's invariants (tests call this after every step)."""
        assert self._timer is None or self._timer <= self._earliest_timer(), "late timer"
        for key, accepted in self._accepted.items():
            assert accepted.link == LOOPBACK or self._links[accepted.link].up, key
            assert accepted.link == LOOPBACK or key in self._links[accepted.link].sessions
        for sid, session in self._dialled.items():
            if session.mode is Mode.UNICAST and session.link not in (None, LOOPBACK):
                assert self._links[session.link].up, (sid, session)
            if session.state != "open":
                assert (session.deadline, sid) in self._deadlines, (sid, session)
        for link in self._links.values():
            for key in link.sessions:
                assert key in self._accepted or key.sid in self._dialled, (link.id, key)
