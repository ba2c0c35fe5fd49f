"""Supervised tasks: restart a failing task with backoff, as a long-lived watcher needs."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

import attrs
import trio

from ._backoff import Backoff

__all__ = ["SuperviseStats", "supervise"]

log = logging.getLogger("trimicro.nursery")

DEFAULT_BACKOFF = Backoff()


@attrs.define
class SuperviseStats:
    """Updated in place by `supervise`: how often the task failed and was restarted."""

    restarts: int = 0
    last_error: str = ""


async def supervise(
    fn: Callable[[], Awaitable[object]],
    *,
    name: str,
    backoff: Backoff = DEFAULT_BACKOFF,
    max_restarts: int | None = None,
    reset_after: float = 60.0,
    rng: random.Random | None = None,
    stats: SuperviseStats | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `await fn()`; when it raises an `Exception`, log it and restart after a backoff.

    The attempt counter resets once a run lasted `reset_after` seconds, so a task that fails
    rarely is restarted quickly. Returns when `fn` returns; re-raises after `max_restarts`.
    Cancellation is never caught.
    """
    stats = stats if stats is not None else SuperviseStats()
    attempt = 0
    task_status.started()
    while True:
        started = trio.current_time()
        try:
            await fn()
            return
        except Exception as exc:
            if trio.current_time() - started >= reset_after:
                attempt = 0
            if max_restarts is not None and stats.restarts >= max_restarts:
                raise
            stats.restarts += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            delay = backoff.delay(attempt, rng)
            log.warning("%s failed (%s); restarting in %.3f s", name, stats.last_error, delay)
            attempt += 1
        await trio.sleep(delay)
