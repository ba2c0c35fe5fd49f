"""Fuzz targets: every decoder, fed arbitrary input, fails only with its protocol error.

The normal suite runs a short pass; `nox -s fuzz -- --inputs 1000000` runs each target for
that many inputs (the `fuzz` hypothesis profile reads TRIMICRO_FUZZ_INPUTS).
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from trimicro.codec import CodecError, Limits, cbor_dumps, cbor_loads, json_loads, structure
from trimicro.rpc._envelope import decode as decode_envelope
from trimicro.session import FrameDecoder, ProtocolError


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Valid bytes with a few bytes flipped, cut or inserted: deeper than pure noise."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 4))):
            if not data:
                break
            at = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(["flip", "cut", "insert"]))
            if action == "flip":
                data[at] ^= draw(st.integers(1, 255))
            elif action == "cut":
                del data[at:]
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
        return bytes(data)

    return mutate()


VALID_REQUEST = cbor_dumps(
    {"t": "req", "call": 1, "service": "greeter", "endpoint": "Say.Hello", "metadata": {"a": "b"},
     "budget": 10**9, "ct": "application/cbor", "stream": False, "body": b"\xa0", "v": 1}
)  # fmt: skip


@given(st.binary(max_size=512) | _mutations(VALID_REQUEST))
def test_cbor_decoder(data: bytes) -> None:
    try:
        cbor_loads(data)
    except CodecError:
        pass


@given(st.binary(max_size=512))
def test_json_decoder(data: bytes) -> None:
    try:
        json_loads(data)
    except CodecError:
        pass


@given(
    st.lists(st.binary(max_size=64), max_size=8)
    | _mutations(len(VALID_REQUEST).to_bytes(4, "big") + VALID_REQUEST).map(lambda b: [b])
)
def test_frame_decoder(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(Limits(max_frame_size=4096))
    try:
        for chunk in filter(None, chunks):
            decoder.receive_data(chunk)
            while decoder.next_message() is not None:
                pass
        decoder.receive_data(b"")
        decoder.next_message()
    except ProtocolError:
        pass


@given(
    st.dictionaries(
        st.sampled_from(["t", "call", "service", "endpoint", "metadata", "budget", "ct",
                         "stream", "body", "v", "n", "id", "code", "detail", "status"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.binary(max_size=10)
        | st.sampled_from(["req", "res", "msg", "end", "cancel", "credit", "err"])
        | st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    )
)  # fmt: skip
def test_envelope_decoder(message: dict[str, object]) -> None:
    try:
        decode_envelope(message)
    except ProtocolError:
        pass


@attrs.frozen
class Item:
    name: str
    count: int = 0


@attrs.frozen
class Order:
    items: list[Item]
    note: str | None = None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["items", "name", "count", "note"]), inner,
                                      max_size=3), max_leaves=12))  # fmt: skip
def test_structuring(data: object) -> None:
    try:
        structure(data, Order)
    except CodecError:
        pass
