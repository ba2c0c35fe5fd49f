"""A circuit breaker per service and endpoint, as a client wrapper.

The states and transitions are one data table (h11's habit): read `TRANSITIONS` to know the
whole behaviour. An open circuit fails calls at once with a 503 that says nothing ran, so the
caller's retry logic and budgets stay truthful.

    client = open_client(wrappers=[circuit_breaker(failures=5, reset_after=30)])
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
import trio

from . import errors
from ._wrappers import Proceed, WrappedCall, Wrapper

__all__ = ["TRANSITIONS", "BreakerState", "CircuitBreaker", "circuit_breaker"]


class BreakerState(enum.Enum):
    CLOSED = "closed"  # calls flow; consecutive failures are counted
    OPEN = "open"  # calls fail at once until `reset_after` has passed
    HALF_OPEN = "half-open"  # one trial call at a time decides


class Event(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"  # a 5xx, a lost connection or a timeout
    THRESHOLD = "threshold"  # consecutive failures reached `failures`
    RESET_TIMER = "reset-timer"  # `reset_after` passed while open


#: (state, event) → next state. Anything not listed leaves the state as it is.
TRANSITIONS: dict[tuple[BreakerState, Event], BreakerState] = {
    (BreakerState.CLOSED, Event.THRESHOLD): BreakerState.OPEN,
    (BreakerState.OPEN, Event.RESET_TIMER): BreakerState.HALF_OPEN,
    (BreakerState.HALF_OPEN, Event.SUCCESS): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, Event.FAILURE): BreakerState.OPEN,
}


@attrs.define
class CircuitBreaker:
    """The state of one circuit (one service + endpoint)."""

    failures: int = 5
    reset_after: float = 30.0
    state: BreakerState = BreakerState.CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    trial_running: bool = False

    def _fire(self, event: Event, now: float) -> None:
        new = TRANSITIONS.get((self.state, event), self.state)
        if new is BreakerState.OPEN and self.state is not BreakerState.OPEN:
            self.opened_at = now
        if new is BreakerState.CLOSED and self.state is not BreakerState.CLOSED:
            self.consecutive = 0
        self.state = new

    def admit(self, now: float) -> bool:
        """May a call go through now?"""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.reset_after:
            self._fire(Event.RESET_TIMER, now)
        if self.state is BreakerState.OPEN:
            return False
        if self.state is BreakerState.HALF_OPEN:
            if self.trial_running:
                return False
            self.trial_running = True
        return True

    def record(self, ok: bool, now: float) -> None:
        self.trial_running = False
        if ok:
            self.consecutive = 0
            self._fire(Event.SUCCESS, now)
            return
        self.consecutive += 1
        self._fire(Event.FAILURE, now)
        if self.state is BreakerState.CLOSED and self.consecutive >= self.failures:
            self._fire(Event.THRESHOLD, now)


def _is_failure(exc: BaseException) -> bool:
    if isinstance(exc, errors.Error):
        return exc.code >= 500 or exc.code == 408
    return isinstance(exc, trio.TooSlowError)


def circuit_breaker(failures: int = 5, reset_after: float = 30.0) -> Wrapper:
    """A client wrapper keeping one `CircuitBreaker` per (service, endpoint)."""
    circuits: dict[tuple[str, str], CircuitBreaker] = {}

    async def wrapper(call: WrappedCall, proceed: Proceed) -> Any:
        key = (call.service, call.endpoint)
        circuit = circuits.setdefault(key, CircuitBreaker(failures, reset_after))
        if not circuit.admit(trio.current_time()):
            raise errors.Error(
                "trimicro.client", 503, f"circuit open for {call.service} {call.endpoint}",
                "Service Unavailable",
            )  # fmt: skip
        try:
            result = await proceed()
        except BaseException as exc:
            circuit.record(not _is_failure(exc), trio.current_time())
            raise
        circuit.record(True, trio.current_time())
        return result

    wrapper.circuits = circuits  # type: ignore[attr-defined]  # for statistics and tests
    return wrapper
