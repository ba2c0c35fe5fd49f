"""Codecs by content type: CBOR (default) and JSON, each encode/decode + structuring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._cbor import cbor_dumps, cbor_loads
from ._errors import CodecError
from ._json import json_dumps, json_loads
from ._structure import CBOR_CONVERTER, JSON_CONVERTER, structure

__all__ = ["CBOR", "JSON", "Codec", "codec_for"]


@attrs.frozen
class Codec:
    """Encodes values (attrs instances or plain data) for one content type, and back."""

    content_type: str
    _dumps: Callable[[object], bytes] = attrs.field(repr=False)
    _loads: Callable[[bytes], Any] = attrs.field(repr=False)
    _for_json: bool = attrs.field(repr=False)

    def encode(self, obj: object) -> bytes:
        converter = JSON_CONVERTER if self._for_json else CBOR_CONVERTER
        try:
            plain = converter.unstructure(obj)
        except Exception as exc:  # cattrs raises whatever a hook raises
            raise CodecError(f"cannot encode {type(obj).__name__}: {exc}") from None
        return self._dumps(plain)

    def decode(self, data: bytes, into: Any = None) -> Any:
        """Decode `data`, structured into `into` when given (plain data otherwise)."""
        return structure(self._loads(data), into, for_json=self._for_json)


CBOR = Codec("application/cbor", cbor_dumps, cbor_loads, False)
JSON = Codec("application/json", json_dumps, json_loads, True)
_BY_TYPE = {CBOR.content_type: CBOR, JSON.content_type: JSON}


def codec_for(content_type: str) -> Codec:
    """The codec for a content type (parameters such as `; charset=utf-8` are ignored)."""
    codec = _BY_TYPE.get(content_type.split(";", 1)[0].strip().lower())
    if codec is None:
        known = ", ".join(sorted(_BY_TYPE))
        raise CodecError(f"unsupported content type {content_type!r} (supported: {known})")
    return codec
