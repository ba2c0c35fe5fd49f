"""Transport plugins by URL: `tcp://`, `memory://NAME`, `quic://` (entry points)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .._plugins import load_plugin
from ._base import Transport
from ._memory import MemoryTransport
from ._tcp import TcpTransport

__all__ = [
    "DEFAULT_TRANSPORT",
    "load_transport",
    "memory_transport",
    "quic_transport",
    "tcp_transport",
]

DEFAULT_TRANSPORT = "quic://"


def load_transport(url: str = DEFAULT_TRANSPORT) -> Transport:
    """The transport for `url`'s scheme."""
    factory = load_plugin("trimicro.transports", url)
    transport: Transport = factory(url)
    return transport


def tcp_transport(url: str) -> Transport:
    """`tcp://`: framed messages over TCP."""
    return TcpTransport()


def quic_transport(url: str) -> Transport:
    """`quic://[?max_datagram_size=N]`: framed messages over QUIC (aioquic)."""
    from ._quic_transport import QuicOptions, QuicTransport

    return QuicTransport(QuicOptions.from_url(url))


def memory_transport(url: str) -> Transport:
    """`memory://NAME`: in-process; transports with the same NAME reach each other."""
    return MemoryTransport(urlsplit(url).netloc or "default")
