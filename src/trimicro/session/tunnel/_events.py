"""What the tunnel core tells its driver (sans-io): link and session events."""

from __future__ import annotations

import attrs

from ._messages import Mode

__all__ = [
    "LOOPBACK",
    "ChannelsAnnounced",
    "DialFailed",
    "Event",
    "LinkDown",
    "LinkUp",
    "SessionAccepted",
    "SessionClosed",
    "SessionData",
    "SessionKey",
    "SessionOpened",
]

#: The pseudo link of loopback sessions (a dial of a channel this node listens on).
LOOPBACK = ""


@attrs.frozen
class SessionKey:
    """`link` None: a session we dialled (`sid` ours); else the link it was accepted on
    (`sid` the dialler's), `LOOPBACK` for one we dialled ourselves."""

    link: str | None
    sid: int

    @property
    def dialled(self) -> bool:
        return self.link is None


@attrs.frozen
class LinkUp:
    link: str
    peer: str


@attrs.frozen
class LinkDown:
    """The link is gone from the core; the driver closes its connection (after sending what
    is queued for it, e.g. the close message)."""

    link: str
    reason: str


@attrs.frozen
class ChannelsAnnounced:
    """A link's peer announced channels it was not known to listen on (new mappings)."""

    link: str
    channels: tuple[str, ...]


@attrs.frozen
class SessionOpened:
    key: SessionKey


@attrs.frozen
class DialFailed:
    key: SessionKey
    reason: str


@attrs.frozen
class SessionAccepted:
    key: SessionKey
    channel: str
    mode: Mode


@attrs.frozen
class SessionData:
    key: SessionKey
    data: bytes


@attrs.frozen
class SessionClosed:
    """The other side closed the session (`broken` False), or its link went down (True)."""

    key: SessionKey
    reason: str
    broken: bool = False


Event = (
    LinkUp
    | LinkDown
    | ChannelsAnnounced
    | SessionOpened
    | DialFailed
    | SessionAccepted
    | SessionData
    | SessionClosed
)
