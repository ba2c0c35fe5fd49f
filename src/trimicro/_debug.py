"""`Debug.Health` and `Debug.Stats`, answered by every service."""

from __future__ import annotations

import os
import resource
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .rpc import Handler, handler_from_function

if TYPE_CHECKING:
    from ._service import Service

__all__ = ["debug_handlers", "service_stats"]


def _memory_rss() -> int:
    """Resident set size in bytes (current where /proc has it, else the peak)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(t) for n in task.child_nurseries for t in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]


def service_stats(service: Service) -> dict[str, Any]:
    server = getattr(service, "_server", None)
    started = getattr(service, "_started", trio.current_time())
    stats = server.statistics() if server is not None else None
    uptime = trio.current_time() - started
    metrics = getattr(service, "metrics", None)
    extra: dict[str, Any] = {"metrics": metrics.summary()} if metrics is not None else {}
    client = getattr(service, "_client", None)
    if client is not None:
        extra["client"] = attrs.asdict(client.statistics())
    return {
        **extra,
        "started": int(time.time() - uptime),  # wall-clock seconds, for humans and dashboards
        "uptime": uptime,
        "requests": stats.requests if stats else 0,
        "errors": stats.errors if stats else 0,
        "in_flight": stats.in_flight if stats else 0,
        "tasks": _count_tasks(),
        "memory_rss": _memory_rss(),
    }


def debug_handlers(service: Service) -> dict[str, Handler]:
    async def health(request: Any) -> dict[str, str]:
        return {"status": "ok"}

    async def stats(request: Any) -> dict[str, Any]:
        return service_stats(service)

    return {
        "Debug.Health": handler_from_function("Debug.Health", health, idempotent=True),
        "Debug.Stats": handler_from_function("Debug.Stats", stats, idempotent=True),
    }
