"""The errors every transport raises (no I/O imports: the sans-io framing uses them too)."""

from __future__ import annotations

__all__ = ["ConnectError", "ConnectionClosed", "FrameTooLarge", "ProtocolError", "SessionError"]


class SessionError(Exception):
    """Base class of every error a transport raises."""


class ConnectError(SessionError):
    """Could not establish a connection: nothing was sent (safe to retry elsewhere)."""


class ConnectionClosed(SessionError):
    """The connection is closed (by either side, or broken)."""


class ProtocolError(SessionError):
    """The peer sent bytes that are not a valid frame; the connection is unusable."""


class FrameTooLarge(ProtocolError):
    """A frame's declared length exceeds the limit; refused before anything is allocated."""
