"""A token-bucket rate limiter, usable as a handler wrapper (server side) or a client wrapper.

Over the limit, the call fails at once with 429 Too Many Requests; on the server, before the
handler runs.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from . import errors
from ._wrappers import Proceed, WrappedCall, Wrapper

__all__ = ["TokenBucket", "rate_limiter"]


@attrs.define
class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; `take(now)` spends one."""

    rate: float
    burst: float
    tokens: float = attrs.field(default=-1.0)
    updated: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(
                f"rate limiter needs rate > 0 and burst >= 1, got {self.rate}, {self.burst}"
            )
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float) -> bool:
        if self.updated is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def rate_limiter(rate: float, burst: float | None = None, *, per_endpoint: bool = False) -> Wrapper:
    """Allow `rate` calls per second (bursts up to `burst`), per service or per endpoint."""
    buckets: dict[tuple[str, str], TokenBucket] = {}

    async def wrapper(call: WrappedCall, proceed: Proceed) -> Any:
        key = (call.service, call.endpoint if per_endpoint else "*")
        bucket = buckets.setdefault(key, TokenBucket(rate, burst or max(1.0, rate)))
        if not bucket.take(trio.current_time()):
            where = call.service if call.kind != "client" else "trimicro.client"
            raise errors.too_many_requests(
                f"{call.service} {call.endpoint}: over {rate:g} calls/s", id=where
            )
        return await proceed()

    return wrapper
