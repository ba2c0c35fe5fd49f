"""A discrete-event simulator for tunnel cores: wires with one-way delays, a shared clock.

Messages go through real CBOR (encode, hardened decode) so what a core receives is what a
peer would; what one flush takes from a core for a link is packed as the driver's writer
packs a drained queue (`core.pack`: consecutive session messages as one `batch`). A
`LinkDown` on one side closes the wire, and the other side then sees `link_lost`, as the
driver's closing of the connection would cause.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

import attrs

from trimicro.codec import cbor_dumps, cbor_loads
from trimicro.session.tunnel._core import TunnelCore, TunnelOptions
from trimicro.session.tunnel._events import Event, LinkDown

Filter = Callable[[str, str, dict[str, Any]], bool]  # (sender, link, message) → deliver?


@attrs.define
class Wire:
    a: str
    a_link: str
    b: str
    b_link: str
    delay: float
    silent: bool = False  # drops everything (a dead peer that does not close)


class Sim:
    def __init__(self) -> None:
        self.now = 0.0
        self.cores: dict[str, TunnelCore] = {}
        self.events: dict[str, list[tuple[float, Event]]] = {}
        self.wires: dict[tuple[str, str], Wire] = {}  # (core, link) → wire
        self.sent: list[tuple[float, str, str, dict[str, Any]]] = []  # every message
        self.filter: Filter | None = None
        self.frames = 0  # link frames put on wires (a batch is one)
        self._queue: list[tuple[float, int, str, str, bytes]] = []
        self._seq = itertools.count()
        self._links = itertools.count(1)
        self._nonces = itertools.count(1)

    def add(self, name: str, *, token: str | None = None, **options: Any) -> TunnelCore:
        core = TunnelCore(name, token=token, options=TunnelOptions(**options))
        self.cores[name], self.events[name] = core, []
        return core

    def nonce(self) -> bytes:
        return next(self._nonces).to_bytes(16, "big")

    def connect(self, a: str, b: str, *, delay: float = 0.01, fp: str = "") -> Wire:
        """`a` dials `b`; `fp` is b's certificate fingerprint (a sees it on the link)."""
        n = next(self._links)
        wire = Wire(a, f"{a}>{b}#{n}", b, f"{b}<{a}#{n}", delay)
        self.wires[(a, wire.a_link)] = self.wires[(b, wire.b_link)] = wire
        self.cores[a].link_opened(
            wire.a_link, dialled=True, nonce=self.nonce(), now=self.now, remote_fp=fp
        )
        self.cores[b].link_opened(
            wire.b_link, dialled=False, nonce=self.nonce(), now=self.now, local_fp=fp
        )
        self.flush()
        return wire

    def cut(self, wire: Wire, reason: str = "connection broke") -> None:
        """The connection breaks: both sides see it."""
        for name, link in ((wire.a, wire.a_link), (wire.b, wire.b_link)):
            self.wires.pop((name, link), None)
            self.cores[name].link_lost(link, reason, self.now)
        self.flush()

    def flush(self) -> None:
        """Move every core's outgoing messages onto the wires; act on `LinkDown`s."""
        busy = True
        while busy:
            busy = False
            for name, core in self.cores.items():
                drained: dict[str, list[dict[str, Any]]] = {}
                for link, message in core.messages_to_send():
                    busy = True
                    if self._keep(name, link, message):
                        drained.setdefault(link, []).append(message)
                for link, messages in drained.items():
                    for frame in core.pack(link, messages):
                        self._put(name, link, frame)
                while (event := core.next_event()) is not None:
                    busy = True
                    self.events[name].append((self.now, event))
                    if isinstance(event, LinkDown):
                        self._close_wire(name, event.link)

    def _keep(self, name: str, link: str, message: dict[str, Any]) -> bool:
        """Log a message a core sent; False: the filter drops it."""
        self.sent.append((self.now, name, link, message))
        return self.filter is None or self.filter(name, link, message)

    def _put(self, name: str, link: str, message: dict[str, Any]) -> None:
        wire = self.wires.get((name, link))
        self.frames += 1
        if wire is None or wire.silent:
            return
        dest, dest_link = (wire.b, wire.b_link) if name == wire.a else (wire.a, wire.a_link)
        item = (self.now + wire.delay, next(self._seq), dest, dest_link, cbor_dumps(message))
        heapq.heappush(self._queue, item)

    def _close_wire(self, name: str, link: str) -> None:
        wire = self.wires.pop((name, link), None)
        if wire is None:
            return
        other, other_link = (wire.b, wire.b_link) if name == wire.a else (wire.a, wire.a_link)
        if self.wires.pop((other, other_link), None) is not None:
            self.cores[other].link_lost(other_link, "connection closed by peer", self.now)

    def run_until(self, t: float) -> None:
        self.flush()
        while True:
            timer = min((core.get_timer() for core in self.cores.values()), default=t + 1)
            arrival = self._queue[0][0] if self._queue else t + 1
            step = min(timer, arrival)
            if step > t:
                break
            self.now = max(self.now, step)
            while self._queue and self._queue[0][0] <= self.now:
                _, _, dest, link, data = heapq.heappop(self._queue)
                self.cores[dest].receive(link, cbor_loads(data), self.now)
                self.flush()
            for core in self.cores.values():
                if core.get_timer() <= self.now:
                    core.handle_timer(self.now)
            self.flush()
        self.now = t

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def of(self, name: str, kind: type[Any]) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.events[name] if isinstance(e, kind)]

    def check(self) -> None:
        for core in self.cores.values():
            core.check_invariants(self.now)
