"""Endpoint schemas from type hints: a JSON-Schema subset the registry publishes, so the CLI,
gateway and dashboard can show (and template) requests and responses."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Union

import attrs

__all__ = ["schema_of", "template_of"]

#: Nested classes deeper than this are described by title only (recursive types end here).
MAX_SCHEMA_DEPTH = 8

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "contentEncoding": "base64"},
    type(None): {"type": "null"},
}


def schema_of(tp: Any) -> dict[str, Any] | None:
    """Describe `tp`; None when there is nothing to describe (no hint)."""
    if tp is None:
        return None
    return _schema(tp, 0)


def _schema(tp: Any, depth: int) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp is Any or tp is object:
        return {}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    if attrs.has(tp):
        return _attrs_schema(tp, depth)
    return _generic_schema(tp, depth)


def _generic_schema(tp: Any, depth: int) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        item = args[0] if args else Any
        return {"type": "array", "items": _schema(item, depth + 1)}
    if origin is dict or tp is dict:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": _schema(value, depth + 1)}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema(arg, depth + 1) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    return {}


def _attrs_schema(cls: type[Any], depth: int) -> dict[str, Any]:
    if depth >= MAX_SCHEMA_DEPTH:
        return {"title": cls.__name__, "type": "object"}
    hints = typing.get_type_hints(cls)
    properties = {}
    required = []
    for field in attrs.fields(cls):
        properties[field.name] = _schema(hints.get(field.name, Any), depth + 1)
        if field.default is attrs.NOTHING:
            required.append(field.name)
    schema: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def template_of(schema: Any) -> Any:
    """An example value for `schema` (the dashboard's call form starts from it)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return template_of(options[0]) if options else None
    kind = schema.get("type")
    defaults = {"string": "", "integer": 0, "number": 0, "boolean": False, "null": None}
    if kind in defaults:
        return defaults[kind]
    if kind == "array":
        return []
    if kind == "object":
        props = schema.get("properties", {})
        return {name: template_of(sub) for name, sub in props.items()}
    return None
