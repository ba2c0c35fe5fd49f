"""JSON limits, cattrs structuring with field paths, schemas and codecs by content type."""

from __future__ import annotations

import enum

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.codec import (
    CBOR,
    JSON,
    CodecError,
    codec_for,
    json_dumps,
    json_loads,
    schema_of,
    structure,
    template_of,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Item:
    name: str
    count: int = 0


@attrs.frozen
class Order:
    items: list[Item]
    note: str | None = None
    color: Color = Color.RED
    blob: bytes = b""
    tags: dict[str, float] = attrs.field(factory=dict)


orders = st.builds(
    Order,
    items=st.lists(st.builds(Item, st.text(), st.integers(-(2**53), 2**53)), max_size=4),
    note=st.none() | st.text(),
    color=st.sampled_from(Color),
    blob=st.binary(max_size=20),
    tags=st.dictionaries(st.text(), st.floats(allow_nan=False, allow_infinity=False)),
)


@given(orders)
def test_attrs_round_trip_through_both_codecs(order: Order) -> None:
    assert CBOR.decode(CBOR.encode(order), Order) == order
    assert JSON.decode(JSON.encode(order), Order) == order


def test_json_refusals() -> None:
    with pytest.raises(CodecError, match="duplicate key 'a'"):
        json_loads(b'{"a": 1, "a": 2}')
    with pytest.raises(CodecError, match="nested deeper than 32"):
        json_loads(b"[" * 33 + b"]" * 33)
    assert json_loads(b"[" * 32 + b"]" * 32) is not None
    with pytest.raises(CodecError, match="not UTF-8"):
        json_loads(b'"\xff"')
    with pytest.raises(CodecError):
        json_dumps(float("nan"))


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    assert json_loads(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"["}') == {
        "a": "[" * 39 + '"['
    }


@given(st.binary(max_size=100))
def test_random_bytes_raise_only_codec_error(data: bytes) -> None:
    try:
        json_loads(data)
    except CodecError:
        pass


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"items": [{"name": "a"}, {"name": 5}]}, "request.items[1].name: expected string"),
        ({"items": [{"count": 1}]}, "request.items[0].name: required field missing"),
        ({"items": [], "color": "green"}, "request.color"),
        ({"items": "no"}, "request.items"),
        ("text", "request: expected object, got string"),
    ],
)
def test_structuring_errors_name_the_field(data: object, message: str) -> None:
    with pytest.raises(CodecError) as info:
        structure(data, Order)
    assert message in str(info.value)


def test_unknown_keys_are_ignored_and_plain_data_passes_through() -> None:
    assert structure({"items": [], "future": 1}, Order) == Order([])
    assert structure({"any": [1]}, None) == {"any": [1]}


def test_schema_and_template() -> None:
    schema = schema_of(Order)
    assert schema is not None
    assert schema["title"] == "Order" and schema["required"] == ["items"]
    assert schema["properties"]["items"]["items"]["properties"]["name"] == {"type": "string"}
    assert schema["properties"]["color"] == {"enum": ["red", "blue"]}
    assert schema["properties"]["blob"] == {"type": "string", "contentEncoding": "base64"}
    assert template_of(schema) == {
        "items": [], "note": "", "color": "red", "blob": "", "tags": {}
    }  # fmt: skip
    assert schema_of(None) is None


@attrs.frozen
class Tree:
    children: list[Tree]


def test_recursive_schema_terminates() -> None:
    schema = schema_of(Tree)
    assert schema is not None and schema["title"] == "Tree"


def test_codec_for_content_types() -> None:
    assert codec_for("application/json; charset=utf-8") is JSON
    assert codec_for("APPLICATION/CBOR") is CBOR
    with pytest.raises(CodecError, match="unsupported content type 'text/xml'"):
        codec_for("text/xml")


def test_object_means_any_plain_value_and_keys_are_still_checked() -> None:
    assert structure({"a": [1, b"x"], "b": None}, dict[str, object]) == {"a": [1, b"x"], "b": None}
    assert structure(5, object) == 5
    with pytest.raises(CodecError, match=r"request\[1\]: expected string, got integer"):
        structure({1: 1}, dict[str, object])
    with pytest.raises(CodecError, match=r"request\['a'\]: expected integer"):
        structure({"a": "x"}, dict[str, int])  # registering `object` shadows no other type
