"""The app's health: a GET of its health check URL every interval; 2xx is healthy.

`AppHealth` holds the last verdict and lets the sidecar wait for a change; `check_health`
is the polling task. Without a URL the app counts as healthy from the start.
"""

from __future__ import annotations

import logging

import attrs
import httpx
import trio

from ..nursery import run_periodic

__all__ = ["DEFAULT_INTERVAL", "AppHealth", "check_health"]

log = logging.getLogger("trimicro.sidecar")

#: Seconds between health checks (DESIGN.md §4: checked every 10 s).
DEFAULT_INTERVAL = 10.0


@attrs.define(eq=False)
class AppHealth:
    """The last verdict on the app (None: not checked yet) and why it was unhealthy."""

    healthy: bool | None = None
    reason: str = ""
    checks: int = 0
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def report(self, healthy: bool, reason: str = "") -> None:
        self.checks += 1
        self.reason = reason
        if healthy == self.healthy:
            return
        self.healthy = healthy
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, healthy: bool) -> None:
        """Return once the verdict is `healthy`."""
        while self.healthy is not healthy:
            await self._changed.wait()

    def to_dict(self) -> dict[str, object]:
        status = {None: "unknown", True: "healthy", False: "unhealthy"}[self.healthy]
        return {"status": status, "reason": self.reason, "checks": self.checks}


async def probe(http: httpx.AsyncClient, url: str, within: float) -> str:
    """Why `url` is unhealthy: "" when it answers 2xx within `within` seconds."""
    try:
        with trio.fail_after(within):
            response = await http.get(url)
    except trio.TooSlowError:
        return f"no answer within {within:g} s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not 200 <= response.status_code <= 299:
        return f"HTTP {response.status_code}"
    return ""


async def check_health(
    http: httpx.AsyncClient,
    url: str | None,
    health: AppHealth,
    interval: float = DEFAULT_INTERVAL,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Check `url` every `interval` seconds (each check bounded by the interval, at most
    5 s) and report to `health`, until cancelled. Without a URL: healthy, once."""
    if url is None:
        health.report(True)
        task_status.started()
        await trio.sleep_forever()
    timeout = min(interval, 5.0)

    async def once() -> None:
        reason = await probe(http, url, timeout)
        if reason and health.healthy is not False:
            log.warning("health check %s failed: %s", url, reason)
        elif not reason and health.healthy is not True:
            log.info("health check %s passed", url)
        health.report(not reason, reason)

    task_status.started()
    await run_periodic(once, interval)
