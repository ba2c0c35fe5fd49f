"""RPC: envelope, server, client, streams, errors and the call context."""

from . import errors as errors
from ._client import Client as Client
from ._client import TransportFor as TransportFor
from ._context import Call as Call
from ._context import Metadata as Metadata
from ._context import current_call as current_call
from ._context import current_client as current_client
from ._envelope import PROTOCOL_VERSION as PROTOCOL_VERSION
from ._handler import Handler as Handler
from ._handler import handler_from_function as handler_from_function
from ._server import RpcServer as RpcServer
from ._server import ServerStatistics as ServerStatistics
from ._stream import Stream as Stream

__all__ = [
    "PROTOCOL_VERSION",
    "Call",
    "Client",
    "Handler",
    "Metadata",
    "RpcServer",
    "ServerStatistics",
    "Stream",
    "TransportFor",
    "current_call",
    "current_client",
    "errors",
    "handler_from_function",
]
