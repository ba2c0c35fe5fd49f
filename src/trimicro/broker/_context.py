"""What a subscriber handler can ask about the message it handles: `current_message()`."""

from __future__ import annotations

from contextvars import ContextVar

import attrs

from ..session import Metadata

__all__ = ["MessageContext", "current_message", "message_context"]


@attrs.frozen
class MessageContext:
    """The message being handled: its topic, queue group and metadata."""

    topic: str
    queue: str | None
    metadata: Metadata


message_context: ContextVar[MessageContext | None] = ContextVar("trimicro_message", default=None)


def current_message() -> MessageContext:
    """The message the current subscriber handler is handling."""
    context = message_context.get()
    if context is None:
        raise RuntimeError("current_message() is only available inside a subscriber handler")
    return context
