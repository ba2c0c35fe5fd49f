"""Hypothesis: random interleavings of link up/down, session open/close/send and time keep the
core's invariants — no session without a link, every dial answered (opened or failed) by its
deadline, and every session the acceptor still holds is one its dialler still holds."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trimicro.session.tunnel._events import (
    DialFailed,
    SessionAccepted,
    SessionClosed,
    SessionKey,
    SessionOpened,
)
from trimicro.session.tunnel._messages import Mode

from ._sim import Sim

NAMES = ["a", "b", "c"]
CHANNELS = ["svc", "other", "nobody"]


class TunnelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim()
        for name in NAMES:
            self.sim.add(name, max_sessions_per_link=8)
        self.sim.cores["b"].listen("svc", 0.0)
        self.sim.cores["c"].listen("svc", 0.0)
        self.sim.cores["a"].listen("other", 0.0)
        self.dials: dict[tuple[str, SessionKey], float] = {}  # → deadline
        self.seen = {name: 0 for name in NAMES}
        self.answered: set[tuple[str, SessionKey]] = set()
        self.open: set[tuple[str, SessionKey]] = set()
        self._ids = itertools.count()

    def _absorb(self) -> None:
        for name in NAMES:
            events = self.sim.events[name]
            for _, event in events[self.seen[name] :]:
                if isinstance(event, SessionOpened | DialFailed):
                    assert (name, event.key) not in self.answered, "answered twice"
                    self.answered.add((name, event.key))
                if isinstance(event, SessionOpened | SessionAccepted):
                    self.open.add((name, event.key))
                elif isinstance(event, SessionClosed):
                    self.open.discard((name, event.key))
            self.seen[name] = len(events)

    @rule(x=st.sampled_from(NAMES), y=st.sampled_from(NAMES), delay=st.sampled_from([0.001, 0.3]))
    def connect(self, x: str, y: str, delay: float) -> None:
        if x != y and len(self.sim.wires) < 8:
            self.sim.connect(x, y, delay=delay)
            self._absorb()

    @precondition(lambda self: self.sim.wires)
    @rule(data=st.data())
    def cut(self, data: st.DataObject) -> None:
        wires = sorted({id(w): w for w in self.sim.wires.values()}.values(), key=lambda w: w.a_link)
        self.sim.cut(data.draw(st.sampled_from(wires)))
        self._absorb()

    @rule(x=st.sampled_from(NAMES), channel=st.sampled_from(CHANNELS),
          mode=st.sampled_from(list(Mode)))  # fmt: skip
    def dial(self, x: str, channel: str, mode: Mode) -> None:
        core = self.sim.cores[x]
        key = core.dial(channel, mode, self.sim.now)
        self.dials[(x, key)] = self.sim.now + core.options.dial_timeout
        self.sim.flush()
        self._absorb()

    @precondition(lambda self: self.open)
    @rule(data=st.data(), close=st.booleans(), burst=st.integers(1, 4))
    def use_session(self, data: st.DataObject, close: bool, burst: int) -> None:
        name, key = data.draw(st.sampled_from(sorted(self.open, key=repr)))
        core = self.sim.cores[name]
        if close:
            core.close_session(key, self.sim.now)
            self.open.discard((name, key))
        else:
            for _ in range(burst):  # several in one flush: a batch
                core.send(key, b"data", self.sim.now)  # an open session must accept data
        self.sim.flush()
        self._absorb()

    @rule(seconds=st.sampled_from([0.0005, 0.01, 0.5, 3.0, 40.0, 130.0]))
    def wait(self, seconds: float) -> None:
        self.sim.run_for(seconds)
        self._absorb()

    @invariant()
    def core_invariants(self) -> None:
        self.sim.check()

    @invariant()
    def every_dial_is_answered_by_its_deadline(self) -> None:
        for (name, key), deadline in self.dials.items():
            if deadline <= self.sim.now:
                assert (name, key) in self.answered, (name, key, deadline, self.sim.now)


TestTunnelMachine = TunnelMachine.TestCase
