"""The sans-io framing: any split of the byte stream parses the same; limits come first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.codec import Limits
from trimicro.session import FrameDecoder, FrameTooLarge, ProtocolError, encode_frame

messages = st.lists(
    st.dictionaries(
        st.text(max_size=8),
        st.integers(-(2**64), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=50),
    ),
    min_size=1,
    max_size=5,
)


def _decode_all(chunks: list[bytes]) -> list[dict[str, object]]:
    decoder = FrameDecoder()
    out = []
    for chunk in filter(None, chunks):  # b"" would mean end of stream
        decoder.receive_data(chunk)
        while (message := decoder.next_message()) is not None:
            out.append(message)
    decoder.receive_data(b"")
    assert decoder.next_message() is None and decoder.eof
    return out


@given(messages)
def test_every_split_point_parses_the_same(batch: list[dict[str, object]]) -> None:
    data = b"".join(encode_frame(m) for m in batch)
    for split in range(len(data) + 1):
        assert _decode_all([data[:split], data[split:]]) == batch


@given(messages, st.data())
def test_random_chunkings_parse_the_same(
    batch: list[dict[str, object]], data: st.DataObject
) -> None:
    raw = b"".join(encode_frame(m) for m in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert _decode_all(chunks) == batch


def test_oversize_prefix_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(Limits(max_frame_size=1024))
    decoder.receive_data((1025).to_bytes(4, "big"))  # only the prefix
    with pytest.raises(FrameTooLarge):
        decoder.next_message()


def test_oversize_message_is_refused_on_send() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame({"b": b"x" * 2000}, Limits(max_frame_size=1024))


@pytest.mark.parametrize(
    "body",
    [b"\x01", b"\x83\x01\x02\x03", b"\xa1\x01\x02", b"\xff\xff", b"\xa1\x61a"],
    ids=["integer", "array", "int key", "garbage", "truncated"],
)
def test_bad_bodies_are_protocol_errors(body: bytes) -> None:
    decoder = FrameDecoder()
    decoder.receive_data(len(body).to_bytes(4, "big") + body)
    with pytest.raises(ProtocolError):
        decoder.next_message()


def test_eof_mid_frame_is_a_protocol_error() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame({"a": 1})[:-1])
    assert decoder.next_message() is None
    decoder.receive_data(b"")
    with pytest.raises(ProtocolError, match="middle of a frame"):
        decoder.next_message()
