from __future__ import annotations

__all__ = ["CodecError"]


class CodecError(ValueError):
    """Data could not be encoded, decoded or structured; the message names what and where."""
