"""Middleware for client calls, handlers and subscribers, and the built-in wrappers.

service = trimicro.Service("api", wrappers=[trimicro.wrappers.rate_limiter(100)])
client = trimicro.open_client(wrappers=[trimicro.wrappers.circuit_breaker()])
"""

from .rpc._breaker import TRANSITIONS as TRANSITIONS
from .rpc._breaker import BreakerState as BreakerState
from .rpc._breaker import CircuitBreaker as CircuitBreaker
from .rpc._breaker import circuit_breaker as circuit_breaker
from .rpc._metrics import Metrics as Metrics
from .rpc._metrics import serve_metrics as serve_metrics
from .rpc._ratelimit import TokenBucket as TokenBucket
from .rpc._ratelimit import rate_limiter as rate_limiter
from .rpc._tracing import tracing as tracing
from .rpc._wrappers import Proceed as Proceed
from .rpc._wrappers import WrappedCall as WrappedCall
from .rpc._wrappers import Wrapper as Wrapper
from .rpc._wrappers import compose as compose

__all__ = [
    "TRANSITIONS",
    "BreakerState",
    "CircuitBreaker",
    "Metrics",
    "Proceed",
    "TokenBucket",
    "WrappedCall",
    "Wrapper",
    "circuit_breaker",
    "compose",
    "rate_limiter",
    "serve_metrics",
    "tracing",
]
