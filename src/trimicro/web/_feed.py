"""One registry watch shared by every live page.

Each subscriber gets a bounded queue of watch events. A subscriber that falls behind (its
browser stopped reading) loses its queue rather than slowing the others or growing memory:
its channel closes, the page reconnects and starts again from a fresh snapshot. When the
watch itself breaks, every queue closes the same way, since events may have been missed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from ..registry import Registry, RegistryError, WatchEvent

__all__ = ["FEED_QUEUE_SIZE", "RegistryFeed"]

log = logging.getLogger("trimicro.web")

#: Events one subscriber may have waiting before it is cut off.
FEED_QUEUE_SIZE = 256


class RegistryFeed:
    """Fans the registry's watch events out to subscribers. Run `run()` in a task (under
    `supervise`: it raises when the watch ends)."""

    def __init__(self, registry: Registry, *, queue_size: int = FEED_QUEUE_SIZE) -> None:
        self.registry = registry
        self.queue_size = queue_size
        self._subscribers: set[trio.MemorySendChannel[WatchEvent]] = set()
        self.watching = trio.Event()  # set once the first watch is open

    @contextmanager
    def subscribe(self) -> Iterator[trio.MemoryReceiveChannel[WatchEvent]]:
        """Events from now on; the channel ends (`EndOfChannel`) when the subscriber fell
        behind or the watch broke."""
        send, receive = trio.open_memory_channel[WatchEvent](self.queue_size)
        self._subscribers.add(send)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: WatchEvent) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                log.info("a live page fell %d events behind; it will resync", self.queue_size)
                self._drop(send)
            except trio.BrokenResourceError:
                self._drop(send)

    def _drop(self, send: trio.MemorySendChannel[WatchEvent]) -> None:
        self._subscribers.discard(send)
        send.close()

    async def run(self) -> None:
        try:
            async with self.registry.watch() as watcher:
                self.watching.set()
                async for event in watcher:
                    self.publish(event)
            raise RegistryError("registry watch ended")
        finally:
            for send in list(self._subscribers):
                self._drop(send)
