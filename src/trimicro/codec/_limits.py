"""Size and shape limits for everything we decode. Named here so every layer uses the same."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_LIMITS", "Limits"]


@attrs.frozen
class Limits:
    """Limits applied before (sizes) and during (depth) decoding."""

    #: Deepest nesting of arrays/maps accepted in one document.
    max_depth: int = 32
    #: Largest frame (length prefix excluded) a session accepts: checked before allocation.
    max_frame_size: int = 4 * 1024 * 1024
    #: Largest metadata/header block in a frame.
    max_header_size: int = 64 * 1024


DEFAULT_LIMITS = Limits()
