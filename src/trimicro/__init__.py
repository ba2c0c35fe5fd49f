"""trimicro: microservices on trio's structured concurrency.

service = trimicro.Service("greeter")

@service.endpoint("Say.Hello")
async def hello(req: HelloRequest) -> HelloResponse: ...

trimicro.run(service)
"""

from . import selector as selector
from . import wrappers as wrappers
from ._service import RunningService as RunningService
from ._service import Service as Service
from ._service import open_client as open_client
from ._service import run as run
from .broker import current_message as current_message
from .rpc import Call as Call
from .rpc import Client as Client
from .rpc import Stream as Stream
from .rpc import current_call as current_call
from .rpc import current_client as current_client
from .rpc import errors as errors
from .rpc._wrappers import Proceed as Proceed
from .rpc._wrappers import WrappedCall as WrappedCall

__all__ = [
    "Call",
    "Client",
    "Proceed",
    "RunningService",
    "Service",
    "Stream",
    "WrappedCall",
    "current_call",
    "current_client",
    "current_message",
    "errors",
    "open_client",
    "run",
    "selector",
    "wrappers",
]

__version__ = "0.1.0"
