"""Messages between network nodes (sans-io): CBOR maps with a version and a type.

On the `network` channel: `connect` (a node joined a link), `peer` (its topology, every 30 s)
and `close` (it leaves). On the `control` channel: `advert` (router adverts, each event with
the path of nodes it came through, so a route never loops back). A solicitation is an advert
of the router's SOLICITATION type, as in the router.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..codec import CodecError, cbor_dumps, cbor_loads, structure, unstructure
from ..routing._advert import Advert
from ..routing._wire import MalformedAdvert, advert_from_wire, advert_to_wire
from ._graph import NodeInfo, Topology

__all__ = [
    "VERSION",
    "AdvertMessage",
    "Close",
    "Connect",
    "MalformedMessage",
    "Message",
    "PeerAnnounce",
    "decode",
    "encode",
]

VERSION = 1
#: Longest path an advertised route may carry: farther routes are dropped, not relayed.
MAX_PATH = 16


class MalformedMessage(ValueError):
    """A network message that is not one; the text says what is wrong."""


@attrs.frozen
class Connect:
    node: NodeInfo


@attrs.frozen
class PeerAnnounce:
    topology: Topology


@attrs.frozen
class Close:
    node: NodeInfo


@attrs.frozen
class AdvertMessage:
    """`advert`'s events, each with the ids of the nodes it passed (originator first)."""

    sender: str
    advert: Advert
    paths: tuple[tuple[str, ...], ...]


Message = Connect | PeerAnnounce | Close | AdvertMessage

_TYPES: dict[str, type[Connect | PeerAnnounce | Close]] = {
    "connect": Connect,
    "peer": PeerAnnounce,
    "close": Close,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def encode(message: Message) -> bytes:
    if isinstance(message, AdvertMessage):
        body: dict[str, Any] = {
            "sender": message.sender,
            "advert": advert_to_wire(message.advert),
            "paths": [list(p) for p in message.paths],
        }
        return cbor_dumps({"v": VERSION, "t": "advert", "body": body})
    return cbor_dumps({"v": VERSION, "t": _NAMES[type(message)], "body": unstructure(message)})


def decode(data: bytes) -> Message:
    """Bytes → a message, or `MalformedMessage` naming what is wrong."""
    try:
        value = cbor_loads(data)
    except CodecError as exc:
        raise MalformedMessage(f"network message: {exc}") from None
    if type(value) is not dict or set(value) != {"v", "t", "body"}:
        raise MalformedMessage("network message: expected a map of v, t and body")
    if value["v"] != VERSION:
        raise MalformedMessage(f"network message: version {value['v']!r}, expected {VERSION}")
    kind, body = value["t"], value["body"]
    if kind == "advert":
        return _advert(body)
    cls = _TYPES.get(kind) if type(kind) is str else None
    if cls is None:
        raise MalformedMessage(f"network message: unknown type {kind!r}")
    try:
        message: Message = structure(body, cls)
    except CodecError as exc:
        raise MalformedMessage(f"{kind} message: {exc}") from None
    return message


def _advert(body: Any) -> AdvertMessage:
    if type(body) is not dict or set(body) != {"sender", "advert", "paths"}:
        raise MalformedMessage("advert message: expected sender, advert and paths")
    try:
        advert = advert_from_wire(body["advert"])
        paths: tuple[tuple[str, ...], ...] = structure(body["paths"], tuple[tuple[str, ...], ...])
    except (MalformedAdvert, CodecError) as exc:
        raise MalformedMessage(f"advert message: {exc}") from None
    sender = body["sender"]
    if type(sender) is not str or len(paths) != len(advert.events):
        raise MalformedMessage("advert message: a sender and one path per event are needed")
    if any(not p or len(p) > MAX_PATH for p in paths):
        raise MalformedMessage(f"advert message: every path has 1..{MAX_PATH} nodes")
    return AdvertMessage(sender, advert, paths)
