"""Every CBOR refusal of DESIGN.md §5, one by one, plus round trips and random bytes."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.codec import CodecError, cbor_dumps, cbor_loads

SRC = Path(__file__).resolve().parents[2] / "src" / "trimicro"

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)  # fmt: skip


@given(json_like)
def test_round_trip(value: object) -> None:
    assert cbor_loads(cbor_dumps(value)) == value


def _nested(depth: int) -> bytes:
    return b"\x81" * depth + b"\x00"  # arrays of one element, depth levels deep


def test_depth_32_accepted_33_refused() -> None:
    assert cbor_loads(_nested(31)) is not None
    with pytest.raises(CodecError):
        cbor_loads(_nested(40))


def test_depth_limit_is_exact() -> None:
    accepted = max(d for d in range(25, 40) if _accepts(_nested(d)))
    assert accepted in (31, 32)  # depth counts the innermost item or not, never beyond 32
    assert not _accepts(_nested(33))


def _accepts(data: bytes) -> bool:
    try:
        cbor_loads(data)
    except CodecError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "hex_data"),
    [
        ("indefinite array", "9f01ff"),
        ("indefinite map", "bf616101ff"),
        ("indefinite byte string", "5f42010243030405ff"),
        ("indefinite text string", "7f657374726561646d696e67ff"),
        ("duplicate map key", "a2616101616102"),
        ("tag 0 datetime", "c074323031332d30332d32315432303a30343a30305a"),
        ("tag 1 epoch", "c11a514b67b0"),
        ("tag 2 bignum", "c249010000000000000000"),
        ("tag 28 shareable", "d81c8100"),
        ("tag 29 shared ref", "d81d00"),
        ("tag 55799 self-describe", "d9d9f701"),
        ("tag above 65535", "da0001000001"),
        ("tag inside a map", "a16161c11a514b67b0"),
        ("truncated array", "8301"),
        ("truncated text", "6568656c"),
        ("invalid utf-8", "62c328"),
        ("trailing garbage", "0102"),
        ("reserved additional info", "1c"),
    ],
)
def test_refusals(name: str, hex_data: str) -> None:
    with pytest.raises(CodecError):
        cbor_loads(bytes.fromhex(hex_data))


def test_huge_declared_length_is_refused_without_allocating() -> None:
    # A byte string claiming 2**60 bytes with 3 present.
    data = b"\x5b" + (2**60).to_bytes(8, "big") + b"abc"
    started = time.perf_counter()
    with pytest.raises(CodecError):
        cbor_loads(data)
    assert time.perf_counter() - started < 1.0


def test_huge_declared_array_is_refused() -> None:
    with pytest.raises(CodecError):
        cbor_loads(b"\x9b" + (2**60).to_bytes(8, "big") + b"\x00")


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_codec_error(data: bytes) -> None:
    try:
        cbor_loads(data)
    except CodecError:
        pass


@pytest.mark.parametrize(
    "module",
    ["codec/_cbor.py", "codec/_json.py", "codec/_limits.py", "session/_protocol.py",
     "session/_errors.py"],
)  # fmt: skip
def test_sans_io_modules_import_no_io(module: str) -> None:
    tree = ast.parse((SRC / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"trio", "socket", "time", "random", "asyncio", "threading"}
