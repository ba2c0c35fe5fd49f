"""Structured-concurrency helpers every layer uses: supervised and periodic tasks, budgets,
backoff with jitter, and graceful drain. Imports nothing else of trimicro."""

from ._backoff import Backoff as Backoff
from ._budget import deadline_from_budget_ns as deadline_from_budget_ns
from ._budget import remaining as remaining
from ._budget import remaining_budget_ns as remaining_budget_ns
from ._drain import DrainingError as DrainingError
from ._drain import DrainResult as DrainResult
from ._drain import InFlight as InFlight
from ._drain import InFlightStatistics as InFlightStatistics
from ._owned import open_owned_nursery as open_owned_nursery
from ._periodic import run_periodic as run_periodic
from ._supervise import SuperviseStats as SuperviseStats
from ._supervise import supervise as supervise

__all__ = [
    "Backoff",
    "DrainResult",
    "DrainingError",
    "InFlight",
    "InFlightStatistics",
    "SuperviseStats",
    "deadline_from_budget_ns",
    "open_owned_nursery",
    "remaining",
    "remaining_budget_ns",
    "run_periodic",
    "supervise",
]
