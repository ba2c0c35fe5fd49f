"""Adverts on the wire: round trips, and every refusal names what it refused."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.codec import cbor_dumps
from trimicro.routing import (
    Advert,
    AdvertType,
    EventType,
    MalformedAdvert,
    Route,
    RouteEvent,
    advert_from_wire,
    advert_to_wire,
    decode_advert,
    encode_advert,
)
from trimicro.routing._route import MAX_METRIC

text = st.text(max_size=20)
routes = st.builds(Route, text, text, text, text, text, text, st.integers(0, MAX_METRIC))
times = st.floats(-1e9, 1e9, allow_nan=False)
events = st.builds(RouteEvent, st.sampled_from(EventType), routes, times)
adverts = st.builds(
    Advert,
    st.text(min_size=1, max_size=20),
    st.sampled_from(AdvertType),
    times,
    st.floats(0.001, 1e6),
    st.lists(events, max_size=5),
)


@given(adverts)
def test_round_trip(advert: Advert) -> None:
    assert decode_advert(encode_advert(advert)) == advert


def sample() -> dict[str, Any]:
    route = Route("s", "10.0.0.1:1", "", "net", "r-1", "local", 1)
    advert = Advert(
        "r-1", AdvertType.UPDATE, 5.0, 300.0, [RouteEvent(EventType.CREATE, route, 4.0)]
    )
    return advert_to_wire(advert)


def test_the_map_is_as_documented() -> None:
    assert sample() == {
        "version": 1,
        "id": "r-1",
        "type": 1,
        "timestamp": 5.0,
        "ttl": 300.0,
        "events": [
            {
                "type": 0,
                "timestamp": 4.0,
                "route": {
                    "service": "s",
                    "address": "10.0.0.1:1",
                    "gateway": "",
                    "network": "net",
                    "router": "r-1",
                    "link": "local",
                    "metric": 1,
                },
            }
        ],
    }


def _set(path: list[str | int], value: Any) -> dict[str, Any]:
    data = sample()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


def _drop(path: list[str | int]) -> dict[str, Any]:
    data = sample()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return data


R = ["events", 0, "route"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_set(["version"], 2), "advert.version: 2 is not supported"),
        (_set(["version"], True), "advert.version"),
        (_set(["version"], 1.0), "advert.version"),
        (_drop(["ttl"]), "advert: missing keys ['ttl']"),
        (_set(["extra"], 1), "unknown keys ['extra']"),
        (_set(["id"], ""), "advert.id: must not be empty"),
        (_set(["id"], 7), "advert.id: expected text"),
        (_set(["type"], 3), "advert.type: expected one of [0, 1, 2]"),
        (_set(["type"], True), "advert.type"),
        (_set(["timestamp"], math.inf), "advert.timestamp: expected a finite number"),
        (_set(["timestamp"], "5"), "advert.timestamp"),
        (_set(["ttl"], 0.0), "advert.ttl: must be positive"),
        (_set(["events"], {}), "advert.events: expected an array"),
        (_set(["events", 0, "type"], 9), "advert.events[0].type"),
        (_set(["events", 0, "timestamp"], math.nan), "advert.events[0].timestamp"),
        (_set([*R, "metric"], -1), "advert.events[0].route.metric"),
        (_set([*R, "metric"], 2**63), "advert.events[0].route.metric"),
        (_set([*R, "metric"], 1.0), "advert.events[0].route.metric"),
        (_set([*R, "service"], b"s"), "advert.events[0].route.service: expected text"),
        (_set([*R, "address"], "x" * 1025), "advert.events[0].route.address: longer than"),
        (_drop([*R, "link"]), "advert.events[0].route: missing keys ['link']"),
        (_set(["events", 0], []), "advert.events[0]: expected a map"),
        ([], "advert: expected a map"),
    ],
)
def test_malformed_adverts_are_refused_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(MalformedAdvert) as caught:
        advert_from_wire(data)
    assert message in str(caught.value)


def test_too_many_events_are_refused_before_they_are_decoded() -> None:
    data = sample()
    data["events"] = data["events"] * 5
    with pytest.raises(MalformedAdvert, match="more than 4 events"):
        advert_from_wire(data, max_events=4)


def test_bad_cbor_is_a_malformed_advert() -> None:
    with pytest.raises(MalformedAdvert, match="advert: invalid CBOR"):
        decode_advert(b"\xff")
    with pytest.raises(MalformedAdvert, match="after the document"):
        decode_advert(cbor_dumps(sample()) + b"\x00")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_malformed_advert(data: bytes) -> None:
    try:
        decode_advert(data)
    except MalformedAdvert:
        pass
