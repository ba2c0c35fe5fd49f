"""Budgets: the wire carries the caller's *remaining* time in integer nanoseconds (None for no
deadline), never an absolute time, so the two sides' clocks need not agree."""

from __future__ import annotations

import math

import trio

__all__ = ["deadline_from_budget_ns", "remaining", "remaining_budget_ns"]

NS = 1_000_000_000


def remaining() -> float:
    """Seconds left before the current effective deadline (`inf` when none)."""
    return max(0.0, trio.current_effective_deadline() - trio.current_time())


def remaining_budget_ns() -> int | None:
    """The current task's remaining budget in ns, for the wire (None when no deadline)."""
    left = remaining()
    return None if math.isinf(left) else round(left * NS)


def deadline_from_budget_ns(budget_ns: int | None, now: float | None = None) -> float:
    """The absolute trio deadline for a budget received now (`inf` for None)."""
    if budget_ns is None:
        return math.inf
    return (trio.current_time() if now is None else now) + max(0, budget_ns) / NS
