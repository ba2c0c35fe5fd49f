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


# -- the network's decoders: tunnel messages, adverts, network messages, NATS, gateway paths --

_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.binary(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=24,
)  # fmt: skip
_TUNNEL_TYPES = ["connect", "auth", "close", "keepalive", "discover", "announce", "open",
                 "accept", "session", "x"]  # fmt: skip


@given(st.sampled_from(_TUNNEL_TYPES), st.dictionaries(st.text(max_size=10), _PLAIN, max_size=6))
def test_tunnel_message_decoder(kind: str, body: dict[str, object]) -> None:
    from trimicro.session.tunnel._messages import MalformedMessage, decode

    try:
        decode({"v": 1, "t": kind, **body})
    except MalformedMessage:
        pass


@given(_PLAIN)
def test_advert_decoder(value: object) -> None:
    from trimicro.routing import MalformedAdvert, advert_from_wire

    for candidate in (value, {"version": 1, "id": "r", "type": 0, "timestamp": 1.0,
                              "ttl": 30.0, "events": value}):  # fmt: skip
        try:
            advert_from_wire(candidate)
        except MalformedAdvert:
            pass


@given(st.binary(max_size=512))
def test_network_message_decoder(data: bytes) -> None:
    from trimicro.network._messages import MalformedMessage, decode

    try:
        decode(data)
    except MalformedMessage:
        pass


_NATS_VALID = b"INFO {\"max_payload\":1024}\r\nMSG a.b 1 5\r\nhello\r\nPING\r\n+OK\r\n-ERR 'x'\r\n"


@given(st.lists(st.binary(max_size=64) | _mutations(_NATS_VALID), max_size=8))
def test_nats_parser(chunks: list[bytes]) -> None:
    from trimicro.broker._nats_proto import NatsProtocol, NatsProtocolError

    protocol = NatsProtocol()
    try:
        for chunk in chunks:
            protocol.receive_data(chunk or b"\r\n")
            while protocol.next_event() is not None:
                pass
    except NatsProtocolError:
        pass


@given(st.text(max_size=80) | st.from_regex(r"/(v\d/)?[a-z]{1,8}(/[a-zA-Z_.-]{0,8}){0,4}"))
def test_gateway_path_mapping(path: str) -> None:
    from trimicro.gateway import proxy_route, rpc_route, web_route

    route = rpc_route(path)
    if route is not None:
        assert route.service and "." in route.endpoint
    proxy_route(path)
    web_route(path)


@given(_PLAIN)
def test_envelope_decoder_takes_any_decoded_value(value: object) -> None:
    # Found by atheris: a non-map reached `decode` and raised AttributeError.
    try:
        decode_envelope(value)  # type: ignore[arg-type]
    except ProtocolError:
        pass
