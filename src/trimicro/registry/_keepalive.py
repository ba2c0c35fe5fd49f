"""Registration with a TTL, refreshed on an interval (go-micro: TTL 60 s, interval 30 s)."""

from __future__ import annotations

import logging

import trio

from ..nursery import run_periodic
from ._base import Registry, RegistryError
from ._model import ServiceRecord

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_TTL", "keep_registered"]

log = logging.getLogger("trimicro.registry")

DEFAULT_TTL = 60.0
DEFAULT_INTERVAL = 30.0


async def keep_registered(
    registry: Registry,
    record: ServiceRecord,
    *,
    ttl: float = DEFAULT_TTL,
    interval: float = DEFAULT_INTERVAL,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Register `record` now (failing loudly), then refresh it every `interval` until cancelled.

    A failed refresh is logged and retried at the next tick: the TTL leaves room for one miss.
    Cancelling this task stops refreshing; it does not deregister (the owner does, in order).
    """
    if not 0 < interval < ttl:
        raise ValueError(f"register interval {interval} must be positive and below ttl {ttl}")
    await registry.register(record, ttl=ttl)
    task_status.started()

    async def refresh() -> None:
        try:
            await registry.register(record, ttl=ttl)
        except RegistryError as exc:
            log.warning("could not refresh registration of %s: %s", record.name, exc)

    with trio.CancelScope():
        await trio.sleep(interval)
        await run_periodic(refresh, interval)
