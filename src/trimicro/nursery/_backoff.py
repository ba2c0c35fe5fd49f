"""Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): spreads retries of many clients instead of synchronising them."""

from __future__ import annotations

import random

import attrs

__all__ = ["Backoff"]

_default_rng = random.Random()


@attrs.frozen
class Backoff:
    """`delay(n)` before the n-th retry (n from 0): uniform(0, min(cap, base * factor**n)).

    With `jitter=False` the delay is the upper bound itself (deterministic, for tests).
    """

    base: float = 0.1
    cap: float = 30.0
    factor: float = 2.0
    jitter: bool = True

    def ceiling(self, attempt: int) -> float:
        # Cap the exponent first: factor**attempt overflows long before attempt is large.
        exponent = min(attempt, 1024)
        try:
            return min(self.cap, self.base * self.factor**exponent)
        except OverflowError:
            return self.cap

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        return (rng or _default_rng).uniform(0.0, ceiling)
