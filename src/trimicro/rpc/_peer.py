"""A client's connection to one node, multiplexing many calls by call id."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from ..session import Connection, ProtocolError, SessionError
from ._envelope import Envelope, GoAway, decode, encode
from ._stream import CallState

__all__ = ["Peer"]

log = logging.getLogger("trimicro.rpc")


class Peer:
    """One connection; a reader task (in the client's nursery) routes frames to their calls."""

    def __init__(self, conn: Connection, address: str) -> None:
        self.conn = conn
        self.address = address
        self.calls: dict[int, CallState] = {}
        self._ids = itertools.count(1)
        self.closed = False
        #: Set by the server's go-away: the highest call id it will still answer.
        self.last_answered: int | None = None
        self.last_used = trio.current_time()
        self._send_eager: Callable[[Mapping[str, Any]], Awaitable[None]] | None = getattr(
            conn, "send_eager", None
        )

    def open_call(self) -> CallState:
        self.last_used = trio.current_time()
        state = CallState(next(self._ids))
        self.calls[state.call_id] = state
        return state

    def end_call(self, state: CallState) -> None:
        state.close()
        self.calls.pop(state.call_id, None)

    async def send(self, envelope: Envelope, *, eager: bool = False) -> None:
        """`eager`: the caller waits for an answer right after, so the write may skip its
        schedule point (`StreamConnection.send_eager`)."""
        if eager and self._send_eager is not None:
            await self._send_eager(encode(envelope))
        else:
            await self.conn.send(encode(envelope))

    async def run_reader(self) -> None:
        """Route frames until the connection ends; then fail every pending call."""
        try:
            while True:
                envelope = decode(await self.conn.receive())
                if isinstance(envelope, GoAway):
                    self.closed = True  # no new calls here: the pool dials afresh
                    self.last_answered = envelope.call
                    continue
                state = self.calls.get(envelope.call)
                if state is not None:
                    state.deliver(envelope)
        except ProtocolError as exc:
            log.warning("closing connection to %s: %s", self.address, exc)
        except SessionError:
            pass
        finally:
            self.closed = True
            last = self.last_answered
            for state in list(self.calls.values()):
                state.connection_lost(never_ran=last is not None and state.call_id > last)
            with trio.CancelScope(shield=True):
                await self.conn.aclose()
