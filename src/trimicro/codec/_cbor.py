"""Hardened CBOR: the default wire encoding (DESIGN.md §5).

cbor2 6 does the refusing for us when configured: bounded depth, no indefinite-length items,
no duplicate map keys, and no tags (every tag cbor2 knows is overridden by a refusing decoder,
unknown tags reach `tag_hook`, which refuses too). Any failure becomes `CodecError`.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from ._errors import CodecError
from ._limits import DEFAULT_LIMITS

__all__ = ["cbor_dumps", "cbor_loads"]

# Tags we define and accept: none yet. Every tag number cbor2 might decode semantically is
# listed so that its built-in decoder (datetimes, regexes, shared references...) never runs.
_MAX_BUILTIN_TAG = 65536


def _refuse_tag(value: Any, immutable: bool) -> Any:
    raise CodecError("CBOR tags are not accepted")


def _refuse_unknown_tag(tag: cbor2.CBORTag, immutable: bool) -> Any:
    raise CodecError(f"CBOR tag {tag.tag} is not accepted")


_REFUSING_DECODERS = dict.fromkeys(range(_MAX_BUILTIN_TAG), _refuse_tag)


def cbor_dumps(obj: object) -> bytes:
    """Encode plain data (dict, list, str, bytes, int, float, bool, None) as CBOR."""
    try:
        return cbor2.dumps(obj)
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:
        raise CodecError(f"cannot encode as CBOR: {exc}") from None


def cbor_loads(data: bytes, *, max_depth: int = DEFAULT_LIMITS.max_depth) -> Any:
    """Decode exactly one CBOR document, refusing anything outside our hardening rules."""
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        max_depth=max_depth,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        semantic_decoders=_REFUSING_DECODERS,
        tag_hook=_refuse_unknown_tag,
    )
    try:
        value = decoder.decode()
    except CodecError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise CodecError(f"invalid CBOR: {exc}") from None
    # cbor2.loads ignores what follows the first item; a frame holds exactly one.
    if stream.tell() != len(data):
        raise CodecError(f"invalid CBOR: {len(data) - stream.tell()} bytes after the document")
    return value
