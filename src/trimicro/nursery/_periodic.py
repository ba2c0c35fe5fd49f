"""Periodic tasks on trio's clock."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable

import trio

__all__ = ["run_periodic"]

_default_rng = random.Random()


async def run_periodic(
    fn: Callable[[], Awaitable[object]],
    interval: float,
    *,
    jitter: float = 0.0,
    rng: random.Random | None = None,
    immediately: bool = True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `await fn()` every `interval` seconds until cancelled.

    Ticks are scheduled from the start time, so they do not drift; when `fn` overruns, missed
    ticks are skipped rather than run in a burst. `jitter` (a fraction of `interval`) moves
    each tick by up to ±jitter·interval. Exceptions from `fn` propagate.
    """
    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    rng = rng or _default_rng
    start = trio.current_time()
    tick = 0 if immediately else 1
    task_status.started()
    while True:
        offset = rng.uniform(-jitter, jitter) * interval if jitter else 0.0
        await trio.sleep_until(start + tick * interval + offset)
        await fn()
        # Next tick strictly in the future: skip those the call overran.
        elapsed = trio.current_time() - start
        tick = max(tick + 1, math.floor(elapsed / interval) + 1)
