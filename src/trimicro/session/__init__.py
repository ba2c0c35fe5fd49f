"""Moving messages between processes: framing, transports (tcp, memory; quic), errors."""

from ._base import ConnectError as ConnectError
from ._base import Connection as Connection
from ._base import ConnectionClosed as ConnectionClosed
from ._base import ConnectionHandler as ConnectionHandler
from ._base import FrameTooLarge as FrameTooLarge
from ._base import ProtocolError as ProtocolError
from ._base import SessionError as SessionError
from ._base import Transport as Transport
from ._memory import Faults as Faults
from ._memory import MemoryTransport as MemoryTransport
from ._metadata import Metadata as Metadata
from ._plugins import DEFAULT_TRANSPORT as DEFAULT_TRANSPORT
from ._plugins import load_transport as load_transport
from ._protocol import FrameDecoder as FrameDecoder
from ._protocol import encode_frame as encode_frame
from ._stream import StreamConnection as StreamConnection
from ._tcp import TcpTransport as TcpTransport

__all__ = [
    "DEFAULT_TRANSPORT",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "ConnectionHandler",
    "Faults",
    "FrameDecoder",
    "FrameTooLarge",
    "MemoryTransport",
    "Metadata",
    "ProtocolError",
    "SessionError",
    "StreamConnection",
    "TcpTransport",
    "Transport",
    "encode_frame",
    "load_transport",
]
