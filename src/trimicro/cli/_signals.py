"""Waiting for the signal that stops a long-running command."""

from __future__ import annotations

import signal

import trio

__all__ = ["first_signal"]


async def first_signal() -> None:
    """Return at the first SIGINT or SIGTERM (a graceful shutdown follows)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return
