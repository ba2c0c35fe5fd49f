"""`open_owned_nursery`: a nursery for an `open_*` context manager that yields to user code.

A plain nursery wraps whatever the user's block raises in an `ExceptionGroup`, so
`except errors.Error` around `async with open_client()` would never match. When exactly one
exception comes out, this re-raises it as itself (trio-websocket does the same); several
still surface as a group, so nothing is ever lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import trio

__all__ = ["open_owned_nursery"]


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


@asynccontextmanager
async def open_owned_nursery() -> AsyncIterator[trio.Nursery]:
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
