"""JSON with the same limits as CBOR: bounded depth, no duplicate keys, strict UTF-8."""

from __future__ import annotations

import json
from typing import Any

from ._errors import CodecError
from ._limits import DEFAULT_LIMITS

__all__ = ["json_dumps", "json_loads"]

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused (they are not JSON)."""
    try:
        return _encoder.encode(obj).encode()
    except (TypeError, ValueError) as exc:
        raise CodecError(f"cannot encode as JSON: {exc}") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise CodecError(f"invalid JSON: duplicate key {duplicate!r}")
    return result


def _depth(text: str) -> int:
    """Deepest bracket nesting outside strings: checked before parsing, so a hostile document
    cannot recurse the parser."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_loads(data: bytes, *, max_depth: int = DEFAULT_LIMITS.max_depth) -> Any:
    """Decode one JSON document, refusing deep nesting, duplicate keys and bad UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"invalid JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if _depth(text) > max_depth:
        raise CodecError(f"invalid JSON: nested deeper than {max_depth}")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except CodecError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"invalid JSON: {exc}") from None
