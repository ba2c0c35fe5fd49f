"""When to retry, how long to wait, and how many retries a client may spend.

By default a call is retried only when it certainly did not run: the connection could not be
made, or the server refused it before starting the handler (503). An endpoint published as
`idempotent` may also be retried after a lost connection, a timeout or another 5xx.

The retry budget (Finagle's idea) keeps a failing backend from seeing a storm: over a sliding
window, retries may be at most `ratio` of calls plus `per_second` per second.
"""

from __future__ import annotations

from collections import deque

import attrs

__all__ = ["RetryBudget", "RetryPolicy"]


@attrs.frozen
class RetryPolicy:
    """How many times to retry and how long to back off (full jitter) between attempts."""

    retries: int = 1
    backoff_base: float = 0.01
    backoff_cap: float = 1.0


@attrs.define
class RetryBudget:
    """Retries <= ratio * calls + per_second * window, over the last `window` seconds."""

    ratio: float = 0.2
    per_second: float = 10.0
    window: float = 10.0
    _calls: deque[float] = attrs.field(factory=deque)
    _retries: deque[float] = attrs.field(factory=deque)
    spent: int = 0
    refused: int = 0

    def _trim(self, now: float) -> None:
        for times in (self._calls, self._retries):
            while times and times[0] <= now - self.window:
                times.popleft()

    def record_call(self, now: float) -> None:
        self._trim(now)
        self._calls.append(now)

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget if there is room."""
        self._trim(now)
        allowed = self.ratio * len(self._calls) + self.per_second * self.window
        if len(self._retries) + 1 > allowed:
            self.refused += 1
            return False
        self._retries.append(now)
        self.spent += 1
        return True
