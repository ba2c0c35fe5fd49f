"""Adverts on the wire: one CBOR map with a version field, decoded strictly (sans-io).

    {"version": 1, "id": text, "type": 0 | 1 | 2, "timestamp": float, "ttl": float,
     "events": [{"type": 0 | 1 | 2, "timestamp": float,
                 "route": {"service": text, "address": text, "gateway": text,
                           "network": text, "router": text, "link": text,
                           "metric": int64 >= 0}}]}

Advert types: 0 announce, 1 update, 2 solicitation; event types: 0 create, 1 delete,
2 update (go-micro's numbering). Times are seconds on the sender's clock. Decoding refuses
another version, missing or unknown keys, wrong types (no bool for a number, no float for an
integer), non-finite times, a TTL that is not positive, text over `MAX_TEXT` characters and
more than `max_events` events, naming the path of what it refused. The CBOR itself is the
codec's hardened CBOR (depth, indefinite lengths, duplicate keys, tags).
"""

from __future__ import annotations

import math
from typing import Any

from ..codec import CodecError, cbor_dumps, cbor_loads
from ._advert import DEFAULT_LIMITS, Advert, AdvertType
from ._route import MAX_METRIC, Route
from ._table import EventType, RouteEvent, RoutingError

__all__ = [
    "MAX_TEXT",
    "WIRE_VERSION",
    "MalformedAdvert",
    "advert_from_wire",
    "advert_to_wire",
    "decode_advert",
    "encode_advert",
]

WIRE_VERSION = 1
#: Longest text field; service names and addresses are far shorter.
MAX_TEXT = 1024

_ADVERT_KEYS = frozenset({"version", "id", "type", "timestamp", "ttl", "events"})
_EVENT_KEYS = frozenset({"type", "timestamp", "route"})
_ROUTE_TEXT = ("service", "address", "gateway", "network", "router", "link")
_ROUTE_KEYS = frozenset({*_ROUTE_TEXT, "metric"})


class MalformedAdvert(RoutingError):
    """An advert that does not follow the wire format; the message names the field."""


# --- encoding ----------------------------------------------------------------------------------


def _route_to_wire(route: Route) -> dict[str, Any]:
    return {
        "service": route.service,
        "address": route.address,
        "gateway": route.gateway,
        "network": route.network,
        "router": route.router,
        "link": route.link,
        "metric": route.metric,
    }


def _event_to_wire(event: RouteEvent) -> dict[str, Any]:
    route = _route_to_wire(event.route)
    return {"type": int(event.type), "timestamp": float(event.timestamp), "route": route}


def advert_to_wire(advert: Advert) -> dict[str, Any]:
    """The advert as plain data (for embedding in another message)."""
    return {
        "version": WIRE_VERSION,
        "id": advert.id,
        "type": int(advert.type),
        "timestamp": float(advert.timestamp),
        "ttl": float(advert.ttl),
        "events": [_event_to_wire(event) for event in advert.events],
    }


def encode_advert(advert: Advert) -> bytes:
    return cbor_dumps(advert_to_wire(advert))


# --- decoding ----------------------------------------------------------------------------------


def _map(value: Any, keys: frozenset[str], path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise MalformedAdvert(f"{path}: expected a map")
    if value.keys() != keys:
        missing, unknown = sorted(keys - value.keys()), sorted(map(str, value.keys() - keys))
        raise MalformedAdvert(f"{path}: missing keys {missing}, unknown keys {unknown}")
    return value


def _text(value: Any, path: str) -> str:
    if type(value) is not str:
        raise MalformedAdvert(f"{path}: expected text")
    if len(value) > MAX_TEXT:
        raise MalformedAdvert(f"{path}: longer than {MAX_TEXT} characters")
    return value


def _time(value: Any, path: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise MalformedAdvert(f"{path}: expected a finite number")
    return float(value)


def _enum(value: Any, kind: type[AdvertType] | type[EventType], path: str) -> Any:
    if type(value) is not int or value not in kind._value2member_map_:
        raise MalformedAdvert(f"{path}: expected one of {[int(m) for m in kind]}")
    return kind(value)


def _metric(value: Any, path: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_METRIC:
        raise MalformedAdvert(f"{path}: expected an integer from 0 to 2**63 - 1")
    return value


def _route_from_wire(value: Any, path: str) -> Route:
    data = _map(value, _ROUTE_KEYS, path)
    service, address, gateway, network, router, link = (
        _text(data[name], f"{path}.{name}") for name in _ROUTE_TEXT
    )
    metric = _metric(data["metric"], f"{path}.metric")
    return Route(service, address, gateway, network, router, link, metric)


def _event_from_wire(value: Any, path: str) -> RouteEvent:
    data = _map(value, _EVENT_KEYS, path)
    type_ = _enum(data["type"], EventType, f"{path}.type")
    timestamp = _time(data["timestamp"], f"{path}.timestamp")
    return RouteEvent(type_, _route_from_wire(data["route"], f"{path}.route"), timestamp)


def _events_from_wire(value: Any, max_events: int) -> list[RouteEvent]:
    if type(value) is not list:
        raise MalformedAdvert("advert.events: expected an array")
    if len(value) > max_events:
        raise MalformedAdvert(f"advert.events: more than {max_events} events")
    return [_event_from_wire(item, f"advert.events[{i}]") for i, item in enumerate(value)]


def _check_version(version: Any) -> None:
    if type(version) is not int or version != WIRE_VERSION:
        raise MalformedAdvert(f"advert.version: {version!r} is not supported")


def advert_from_wire(value: Any, *, max_events: int = DEFAULT_LIMITS.max_events) -> Advert:
    """Plain data → `Advert`, refusing anything outside the format (`MalformedAdvert`)."""
    if type(value) is dict and "version" in value:  # first: another version may differ in keys
        _check_version(value["version"])
    data = _map(value, _ADVERT_KEYS, "advert")
    ttl = _time(data["ttl"], "advert.ttl")
    if ttl <= 0:
        raise MalformedAdvert("advert.ttl: must be positive")
    sender = _text(data["id"], "advert.id")
    if not sender:
        raise MalformedAdvert("advert.id: must not be empty")
    return Advert(
        sender,
        _enum(data["type"], AdvertType, "advert.type"),
        _time(data["timestamp"], "advert.timestamp"),
        ttl,
        _events_from_wire(data["events"], max_events),
    )


def decode_advert(data: bytes, *, max_events: int = DEFAULT_LIMITS.max_events) -> Advert:
    try:
        value = cbor_loads(data)
    except CodecError as exc:
        raise MalformedAdvert(f"advert: {exc}") from None
    return advert_from_wire(value, max_events=max_events)
