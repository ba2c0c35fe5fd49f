"""Route flap damping (sans-io), after RFC 2439 and go-micro's router.

Rule 1 (as h11's `_state.py`): every state, threshold and transition lives in this file, and
the transitions are one table, `TRANSITIONS`; `docs/routing.md` draws its diagram from it.

Each route with recent changes has a *penalty*: +`penalty` per change, halving every
`half_life` seconds, never above the *ceiling*. Changes wait for the advert tick. A route
whose penalty rises above `suppress` is suppressed: its latest change is held back until the
penalty decays below `reuse`, then released (sent). Below `forget` its history is dropped.

The numbers. go-micro v1.18 uses penalty 100, half-life 30 s, suppress 200, reuse 20, max
suppress 90 s, and deletes a route suppressed longer than 90 s; since a penalty of 300 needs
117 s to fall below 20, a suppressed route there is effectively never recovered. RFC 2439
instead enforces the maximum suppression with a ceiling on the penalty,
`ceiling = reuse * 2 ** (max_suppress / half_life)`: from the ceiling the penalty reaches
`reuse` in exactly `max_suppress`, so no route stays suppressed longer than `max_suppress`
after its last change. With reuse 20 the ceiling is 160, below suppress 200, and nothing could
ever be suppressed. So we keep 100 / 30 s / 200 / 90 s and derive reuse the other way round:

- ceiling 400 = suppress + two penalties, room for a suppressed route to keep flapping;
- reuse 50 = 400 / 2 ** (90 / 30), so the ceiling decays to reuse in exactly 90 s;
- forget 25 = reuse / 2 (RFC 2439 keeps history until half the reuse value).

Consequences: a route that changes at most once per half-life is never suppressed (its
penalty stays below 100 / (1 - 1/2) = 200); three changes within about 40 s suppress it; a
suppressed route is released at most `max_suppress` after its last change, on the first tick
after its penalty falls below reuse, at `last change + half_life * log2(penalty / reuse)`.
"""

from __future__ import annotations

import enum
import math

import attrs

from ._route import RouteKey
from ._table import RouteEvent

__all__ = [
    "DEFAULT_DAMPING",
    "TRANSITIONS",
    "Action",
    "DampingParams",
    "FlapDamper",
    "FlapState",
    "Level",
    "Trigger",
    "flap_docs",
    "state_diagram",
    "transition_table",
]


class FlapState(enum.Enum):
    ABSENT = "absent"  # no recent changes: not tracked
    PENDING = "pending"  # a change waits for the next advert tick
    QUIET = "quiet"  # advertised; the penalty is remembered while it decays
    SUPPRESSED = "suppressed"  # flapping: the latest change is held back


class Trigger(enum.Enum):
    EVENT = "event"  # the route changed: penalty + `penalty`, at most the ceiling
    TICK = "tick"  # the advert tick: the penalty has decayed since


class Level(enum.Enum):
    """Where the penalty p stands, lowest first."""

    UNDER_FORGET = "p < forget"
    UNDER_REUSE = "forget ≤ p < reuse"
    MIDDLE = "reuse ≤ p ≤ suppress"
    OVER_SUPPRESS = "p > suppress"


class Action(enum.Enum):
    HOLD = "hold"  # keep the change (replacing any held one) for later
    SEND = "send"  # advertise the held change now
    NONE = "none"


Transition = tuple[FlapState, Action]

ABSENT, PENDING, QUIET, SUPPRESSED = FlapState
EVENT, TICK = Trigger
UNDER_FORGET, UNDER_REUSE, MIDDLE, OVER_SUPPRESS = Level
HOLD, SEND, NONE = Action
_NOT_OVER = (UNDER_FORGET, UNDER_REUSE, MIDDLE)


def _when(levels: tuple[Level, ...], to: FlapState, action: Action) -> dict[Level, Transition]:
    return dict.fromkeys(levels, (to, action))


#: state → trigger → penalty level → (next state, action). Combinations that cannot happen
#: are absent: penalties only fall between changes, so a tick never finds a route that was
#: not suppressed above `suppress`, and a route is ticked only while tracked.
TRANSITIONS: dict[FlapState, dict[Trigger, dict[Level, Transition]]] = {
    ABSENT: {
        EVENT: {**_when(_NOT_OVER, PENDING, HOLD), OVER_SUPPRESS: (SUPPRESSED, HOLD)},
    },
    PENDING: {
        EVENT: {**_when(_NOT_OVER, PENDING, HOLD), OVER_SUPPRESS: (SUPPRESSED, HOLD)},
        TICK: {UNDER_FORGET: (ABSENT, SEND), **_when((UNDER_REUSE, MIDDLE), QUIET, SEND)},
    },
    QUIET: {
        EVENT: {**_when(_NOT_OVER, PENDING, HOLD), OVER_SUPPRESS: (SUPPRESSED, HOLD)},
        TICK: {UNDER_FORGET: (ABSENT, NONE), **_when((UNDER_REUSE, MIDDLE), QUIET, NONE)},
    },
    SUPPRESSED: {
        EVENT: _when(tuple(Level), SUPPRESSED, HOLD),
        TICK: {
            UNDER_FORGET: (ABSENT, SEND),
            UNDER_REUSE: (QUIET, SEND),
            **_when((MIDDLE, OVER_SUPPRESS), SUPPRESSED, NONE),
        },
    },
}


@attrs.frozen
class DampingParams:
    """The thresholds (see the module docstring for why these values)."""

    penalty: float = 100.0
    half_life: float = 30.0
    suppress: float = 200.0
    reuse: float = 50.0
    max_suppress: float = 90.0

    def __attrs_post_init__(self) -> None:
        if not (self.penalty > 0 and self.half_life > 0 and self.max_suppress > 0):
            raise ValueError("penalty, half_life and max_suppress must be positive")
        if not 0 < self.reuse < self.suppress:
            raise ValueError(f"reuse ({self.reuse}) must be between 0 and suppress")
        if self.ceiling <= self.suppress:
            raise ValueError(
                f"reuse {self.reuse} with max_suppress {self.max_suppress} s and half-life "
                f"{self.half_life} s caps the penalty at {self.ceiling:g}, not above suppress "
                f"{self.suppress:g}: no route could ever be suppressed"
            )

    @property
    def ceiling(self) -> float:
        """The highest penalty: it decays to `reuse` in exactly `max_suppress`."""
        return self.reuse * math.exp2(self.max_suppress / self.half_life)

    @property
    def forget(self) -> float:
        return self.reuse / 2

    def decay(self, penalty: float, elapsed: float) -> float:
        return penalty * math.exp2(-elapsed / self.half_life)

    def level(self, penalty: float) -> Level:
        if penalty > self.suppress:
            return Level.OVER_SUPPRESS
        if penalty >= self.reuse:
            return Level.MIDDLE
        return Level.UNDER_REUSE if penalty >= self.forget else Level.UNDER_FORGET

    def reuse_delay(self, penalty: float) -> float:
        """Seconds until `penalty` decays below `reuse`."""
        return max(0.0, self.half_life * math.log2(penalty / self.reuse))


DEFAULT_DAMPING = DampingParams()


@attrs.define(eq=False)
class _Entry:
    state: FlapState
    penalty: float = 0.0
    at: float = 0.0  # when `penalty` was computed
    event: RouteEvent | None = None  # the held change


@attrs.frozen
class DamperStatistics:
    tracked: int
    suppressed: int
    suppressions: int  # times a route became suppressed
    releases: int  # times a suppressed route was released


class FlapDamper:
    """Per-route penalties and held changes; `tick(now)` yields what to advertise."""

    def __init__(self, params: DampingParams = DEFAULT_DAMPING) -> None:
        self.params = params
        self._entries: dict[RouteKey, _Entry] = {}
        self._suppressions = 0
        self._releases = 0

    def record(self, event: RouteEvent, now: float) -> None:
        """A change to a route (a table event) at `now`."""
        key = event.route.key
        entry = self._entries.get(key) or _Entry(FlapState.ABSENT)
        entry.penalty = min(self._decayed(entry, now) + self.params.penalty, self.params.ceiling)
        entry.at = now
        self._step(key, entry, Trigger.EVENT, event)

    def tick(self, now: float) -> list[RouteEvent]:
        """The advert tick: the changes to send now, oldest first."""
        out: list[RouteEvent] = []
        for key, entry in list(self._entries.items()):
            entry.penalty, entry.at = self._decayed(entry, now), now
            held = entry.event
            if self._step(key, entry, Trigger.TICK, None) is Action.SEND and held is not None:
                out.append(held)
        out.sort(key=lambda event: event.timestamp)
        return out

    def _step(
        self, key: RouteKey, entry: _Entry, trigger: Trigger, event: RouteEvent | None
    ) -> Action:
        was = entry.state
        entry.state, action = TRANSITIONS[was][trigger][self.params.level(entry.penalty)]
        if action is Action.HOLD:
            entry.event = event
        elif action is Action.SEND:
            entry.event = None
        self._count(was, entry.state)
        if entry.state is FlapState.ABSENT:
            self._entries.pop(key, None)
        else:
            self._entries[key] = entry
        return action

    def _count(self, was: FlapState, now_is: FlapState) -> None:
        if now_is is FlapState.SUPPRESSED and was is not FlapState.SUPPRESSED:
            self._suppressions += 1
        elif was is FlapState.SUPPRESSED and now_is is not FlapState.SUPPRESSED:
            self._releases += 1

    def _decayed(self, entry: _Entry, now: float) -> float:
        return self.params.decay(entry.penalty, now - entry.at) if entry.penalty else 0.0

    # --- inspection --------------------------------------------------------------------------

    def state(self, key: RouteKey) -> FlapState:
        entry = self._entries.get(key)
        return FlapState.ABSENT if entry is None else entry.state

    def penalty(self, key: RouteKey, now: float) -> float:
        entry = self._entries.get(key)
        return 0.0 if entry is None else self._decayed(entry, now)

    def is_suppressed(self, key: RouteKey) -> bool:
        return self.state(key) is FlapState.SUPPRESSED

    def reuse_time(self, key: RouteKey) -> float | None:
        """When a suppressed route's penalty falls below reuse (it is released at the first
        tick from then); None when it is not suppressed."""
        entry = self._entries.get(key)
        if entry is None or entry.state is not FlapState.SUPPRESSED:
            return None
        return entry.at + self.params.reuse_delay(entry.penalty)

    def statistics(self) -> DamperStatistics:
        suppressed = sum(e.state is FlapState.SUPPRESSED for e in self._entries.values())
        return DamperStatistics(len(self._entries), suppressed, self._suppressions, self._releases)


# --- the documentation, drawn from the table ---------------------------------------------------


def _describe(levels: list[Level]) -> str:
    """A run of adjacent levels as one condition on the penalty p."""
    order = list(Level)
    low, high = min(map(order.index, levels)), max(map(order.index, levels))
    if high - low + 1 != len(levels):
        return " or ".join(level.value for level in levels)
    floor = (None, ("≥", "forget"), ("≥", "reuse"), (">", "suppress"))[low]
    below = (" < forget", " < reuse", " ≤ suppress", None)[high]
    if floor is None:
        return f"p{below}" if below else "any p"
    if below is None:
        return f"p {floor[0]} {floor[1]}"
    return f"{floor[1]} {'≤' if floor[0] == '≥' else '<'} p{below}"


def _edges() -> list[tuple[FlapState, Trigger, FlapState, Action, str]]:
    edges = []
    for state, by_trigger in TRANSITIONS.items():
        for trigger, by_level in by_trigger.items():
            groups: dict[Transition, list[Level]] = {}
            for level, transition in by_level.items():
                groups.setdefault(transition, []).append(level)
            for (to, action), levels in groups.items():
                edges.append((state, trigger, to, action, _describe(levels)))
    return edges


def state_diagram() -> str:
    """`TRANSITIONS` as a Mermaid state diagram (docs/routing.md embeds it)."""
    lines = ["stateDiagram-v2", "    [*] --> absent"]
    for state, trigger, to, action, condition in _edges():
        label = f"{trigger.value} [{condition}] / {action.value}"
        lines.append(f"    {state.value} --> {to.value}: {label}")
    return "\n".join(lines)


def transition_table(params: DampingParams = DEFAULT_DAMPING) -> str:
    """`TRANSITIONS` and the thresholds as Markdown tables (docs/routing.md embeds them)."""
    rows = [
        "| state | on | penalty | next state | action |",
        "|---|---|---|---|---|",
    ]
    for state, trigger, to, action, condition in _edges():
        rows.append(
            f"| {state.value} | {trigger.value} | {condition} | {to.value} | {action.value} |"
        )
    rows += [
        "",
        "| threshold | value |",
        "|---|---|",
        f"| penalty per change | {params.penalty:g} |",
        f"| half-life | {params.half_life:g} s |",
        f"| suppress (p above) | {params.suppress:g} |",
        f"| reuse (p below) | {params.reuse:g} |",
        f"| forget (p below) | {params.forget:g} |",
        f"| ceiling | {params.ceiling:g} |",
        f"| max suppress | {params.max_suppress:g} s |",
    ]
    return "\n".join(rows)


def flap_docs(params: DampingParams = DEFAULT_DAMPING) -> str:
    """The generated part of docs/routing.md (a test keeps the two equal)."""
    return f"```mermaid\n{state_diagram()}\n```\n\n{transition_table(params)}\n"
