"""Structuring with cattrs: plain data ↔ attrs classes, with errors that name the field.

Extra keys in input are ignored (a newer peer may send fields we do not know yet). Bytes are
native in CBOR and base64 text in JSON, hence two converters.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.preconf.cbor2 import make_converter as make_cbor_converter
from cattrs.preconf.json import make_converter as make_json_converter

from ._errors import CodecError

__all__ = ["structure", "unstructure"]

T = TypeVar("T")


def _strict_scalar(kind: type[Any]) -> Any:
    # cattrs' defaults convert (str(5) == "5", int("5") == 5); a server must not guess.
    def check(value: Any, _: Any) -> Any:
        if kind is float and type(value) is int:
            return float(value)
        if type(value) is not kind:
            raise TypeError(f"expected {_json_type(kind)}, got {_json_type(type(value))}")
        return value

    return check


def _json_type(kind: type[Any]) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", bytes: "bytes",
             dict: "object", list: "array", type(None): "null"}  # fmt: skip
    return names.get(kind, kind.__name__)


def _base64_bytes(value: Any, _: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected base64 string, got {_json_type(type(value))}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("expected base64 string") from None


def _make(for_json: bool) -> cattrs.Converter:
    converter = make_json_converter() if for_json else make_cbor_converter()
    converter.forbid_extra_keys = False
    for kind in (str, int, float, bool):
        converter.register_structure_hook(kind, _strict_scalar(kind))
    if for_json:
        converter.register_structure_hook(bytes, _base64_bytes)
        converter.register_unstructure_hook(bytes, lambda b: base64.b64encode(b).decode())
    else:
        converter.register_structure_hook(bytes, _strict_scalar(bytes))
    # `object` (as in `dict[str, object]`) means any plain value, as `Any` does.
    # (A predicate: a hook registered *for* `object` would shadow every other type's.)
    converter.register_structure_hook_func(lambda t: t is object, lambda value, _: value)
    return converter


CBOR_CONVERTER = _make(for_json=False)
JSON_CONVERTER = _make(for_json=True)


def unstructure(obj: object, *, for_json: bool = False) -> Any:
    """attrs instances (and containers of them) → plain data."""
    return (JSON_CONVERTER if for_json else CBOR_CONVERTER).unstructure(obj)


def structure(data: Any, cls: type[T] | Any, *, for_json: bool = False) -> T:
    """Plain data → `cls`. `cls` None, Any or object passes data through. Raises `CodecError` naming
    the field path, e.g. `request.items[2].name: expected string, got integer`."""
    if cls is None or cls is Any or cls is object:
        result: T = data
        return result
    if attrs.has(cls) and not isinstance(data, dict):
        raise CodecError(f"request: expected object, got {_json_type(type(data))}")
    converter = JSON_CONVERTER if for_json else CBOR_CONVERTER
    try:
        structured: T = converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path="request", format_exception=_format)
        raise CodecError("; ".join(_path_first(m) for m in messages)) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CodecError(f"request: {_format(exc, cls)}") from None
    return structured


def _path_first(message: str) -> str:
    """cattrs says "what @ where"; people read "where: what"."""
    what, sep, where = message.rpartition(" @ ")
    return f"{where}: {what}" if sep else message


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError) and attrs.has(type_):
        return "expected object"
    if isinstance(exc, TypeError) and "not iterable" in str(exc):
        return "expected array"
    return str(exc) or type(exc).__name__
