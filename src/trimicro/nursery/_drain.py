"""Graceful drain: stop accepting, wait for in-flight work within a budget, cancel the rest."""

from __future__ import annotations

import attrs
import trio

__all__ = ["DrainResult", "DrainingError", "InFlight", "InFlightStatistics"]


class DrainingError(Exception):
    """New work was offered after the tracker stopped accepting."""


@attrs.frozen
class DrainResult:
    """How a drain went: units that finished on their own, units cancelled, time it took."""

    completed: int
    cancelled: int
    elapsed: float


@attrs.frozen
class InFlightStatistics:
    in_flight: int
    total: int
    accepting: bool


class _Tracked:
    """Class-based rather than @contextmanager: it is entered once per call."""

    __slots__ = ("_in_flight", "_unit")

    def __init__(self, in_flight: InFlight, unit: trio.CancelScope) -> None:
        self._in_flight, self._unit = in_flight, unit

    def __enter__(self) -> None:
        self._in_flight._enter(self._unit)

    def __exit__(self, *exc_info: object) -> None:
        self._in_flight._exit(self._unit)


@attrs.define(eq=False)
class InFlight:
    """Tracks units of in-flight work, each with the cancel scope that can stop it.

    Example::

        with in_flight.track(scope):      # raises DrainingError once draining
            ...
        result = await in_flight.drain(30.0)
    """

    accepting: bool = True
    _scopes: set[trio.CancelScope] = attrs.field(factory=set)
    _total: int = 0
    _idle: trio.Event = attrs.field(factory=trio.Event)

    def __attrs_post_init__(self) -> None:
        self._idle.set()

    def track(self, scope: trio.CancelScope | None = None) -> _Tracked:
        """A context manager for one unit of work; raises `DrainingError` once draining."""
        if not self.accepting:
            raise DrainingError("not accepting new work: draining")
        return _Tracked(self, scope if scope is not None else trio.CancelScope())

    def _enter(self, unit: trio.CancelScope) -> None:
        self._scopes.add(unit)
        self._total += 1
        if len(self._scopes) == 1:
            self._idle = trio.Event()

    def _exit(self, unit: trio.CancelScope) -> None:
        self._scopes.discard(unit)
        if not self._scopes:
            self._idle.set()

    @property
    def count(self) -> int:
        """Units in flight now."""
        return len(self._scopes)

    def close(self) -> None:
        """Stop accepting new work (idempotent)."""
        self.accepting = False

    async def wait_idle(self) -> None:
        """Wait until no work is in flight."""
        await self._idle.wait()

    def statistics(self) -> InFlightStatistics:
        return InFlightStatistics(len(self._scopes), self._total, self.accepting)

    async def drain(self, budget: float) -> DrainResult:
        """Stop accepting; wait up to `budget` s; cancel what is left and wait for it to end."""
        self.close()
        started = trio.current_time()
        at_start = len(self._scopes)
        with trio.move_on_after(budget):
            await self.wait_idle()
        left = list(self._scopes)
        for scope in left:
            scope.cancel()
        await self.wait_idle()
        return DrainResult(at_start - len(left), len(left), trio.current_time() - started)
