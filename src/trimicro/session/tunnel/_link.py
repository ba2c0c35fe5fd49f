"""One link's state and metrics (sans-io): handshake, RTT, queue delay, errors, channels."""

from __future__ import annotations

import enum
import math

import attrs

from ._events import SessionKey

__all__ = ["Link", "LinkState", "LinkStatistics"]

#: RTT and queue delay are EWMAs: 0.8 of the old value, 0.2 of the new sample.
EWMA_KEEP = 0.8
#: More than this many errors since the last good keepalive echo: the link is in error.
ERROR_THRESHOLD = 3
#: Keepalive probes remembered while waiting for their echo.
MAX_PROBES = 4


class LinkState(enum.Enum):
    CONNECTING = "connecting"  # connect (and auth) not finished
    CONNECTED = "connected"
    ERROR = "error"  # connected, but errors > ERROR_THRESHOLD: avoided by unicast
    CLOSED = "closed"


@attrs.frozen
class LinkStatistics:
    id: str
    peer: str  # the other tunnel's id ("" until its connect arrives)
    dialled: bool
    state: str
    rtt: float | None  # seconds, EWMA; None until the first probe echo
    queue_delay: float  # seconds a message waits in the send queue, EWMA
    errors: int  # since the last good keepalive echo
    errors_total: int
    channels: int  # channels the peer announced (unexpired)
    sessions: int
    messages_in: int
    messages_out: int
    up_since: float | None


def ewma(old: float | None, sample: float) -> float:
    return sample if old is None else EWMA_KEEP * old + (1 - EWMA_KEEP) * sample


@attrs.define(eq=False)
class Link:
    id: str
    dialled: bool
    nonce: bytes
    opened_at: float
    local_fp: str = ""
    remote_fp: str = ""
    peer: str = ""
    peer_nonce: bytes | None = None
    peer_batch: bool = False  # the peer's connect said it decodes `batch` messages
    up: bool = False
    up_since: float | None = None
    rtt: float | None = None
    queue_delay: float = 0.0
    errors: int = 0
    errors_total: int = 0
    last_received: float = 0.0
    next_keepalive: float = math.inf
    next_discover: float = math.inf
    probe_seq: int = 0
    probes: dict[int, float] = attrs.field(factory=dict)  # seq → sent at
    channels: dict[str, float] = attrs.field(factory=dict)  # channel → last announced
    sessions: set[SessionKey] = attrs.field(factory=set)  # sessions riding on this link
    messages_in: int = 0
    messages_out: int = 0

    @property
    def state(self) -> LinkState:
        if not self.up:
            return LinkState.CONNECTING
        return LinkState.ERROR if self.errors > ERROR_THRESHOLD else LinkState.CONNECTED

    @property
    def score(self) -> tuple[bool, bool, float, str]:
        """Smaller is better: healthy first, measured first, then RTT + queue delay."""
        measured = self.rtt is not None
        cost = (self.rtt or 0.0) + self.queue_delay
        return (self.state is LinkState.ERROR, not measured, cost, self.id)

    def error(self) -> None:
        self.errors += 1
        self.errors_total += 1

    def new_probe(self, now: float) -> int:
        """A keepalive sequence number; a probe still unanswered counts as an error."""
        if self.probes:
            self.error()
        self.probe_seq += 1
        self.probes[self.probe_seq] = now
        while len(self.probes) > MAX_PROBES:
            del self.probes[min(self.probes)]
        return self.probe_seq

    def echo(self, seq: int, now: float) -> None:
        sent = self.probes.pop(seq, None)
        if sent is None:
            return
        self.rtt_sample(now - sent)
        self.errors = 0
        self.probes = {s: t for s, t in self.probes.items() if s > seq}

    def rtt_sample(self, sample: float) -> None:
        self.rtt = ewma(self.rtt, max(sample, 0.0))

    def queue_sample(self, sample: float) -> None:
        self.queue_delay = ewma(self.queue_delay, max(sample, 0.0))

    def statistics(self) -> LinkStatistics:
        return LinkStatistics(
            id=self.id, peer=self.peer, dialled=self.dialled, state=self.state.value,
            rtt=self.rtt, queue_delay=self.queue_delay, errors=self.errors,
            errors_total=self.errors_total, channels=len(self.channels),
            sessions=len(self.sessions), messages_in=self.messages_in,
            messages_out=self.messages_out, up_since=self.up_since,
        )  # fmt: skip
