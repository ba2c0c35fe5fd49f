"""The API gateway: HTTP in front of the services (`trimicro api`).

`POST /rpc` calls any service; every other path goes to the chosen handler — `rpc` (path →
`<namespace>.<service>` + `Service.Method`, JSON ↔ request/response), `api` (`api.Request` →
`api.Response`), `http` (reverse proxy to HTTP apps registered under the namespace) or `web`
(HTTP and websocket proxy to web apps under `trimicro.web`). docs/gateway.md has the details.

Example::

    from trimicro.gateway import open_gateway

    async with open_gateway(address="127.0.0.1:8080", handler="rpc") as gateway:
        await trio.sleep_forever()
"""

from . import api as api
from ._api import HANDLERS as HANDLERS
from ._api import Cors as Cors
from ._api import GatewayApp as GatewayApp
from ._api import HandlerName as HandlerName
from ._handlers import Backend as Backend
from ._handlers import Route as Route
from ._handlers import proxy_route as proxy_route
from ._handlers import rpc_route as rpc_route
from ._handlers import web_route as web_route
from ._limits import HttpLimits as HttpLimits
from ._serve import DEFAULT_ADDRESS as DEFAULT_ADDRESS
from ._serve import Gateway as Gateway
from ._serve import HttpServer as HttpServer
from ._serve import default_namespace as default_namespace
from ._serve import open_gateway as open_gateway
from ._serve import serve_gateway as serve_gateway
from ._serve import serve_http as serve_http
from ._serve import start_http as start_http

__all__ = [
    "DEFAULT_ADDRESS",
    "HANDLERS",
    "Backend",
    "Cors",
    "Gateway",
    "GatewayApp",
    "HandlerName",
    "HttpLimits",
    "HttpServer",
    "Route",
    "api",
    "default_namespace",
    "open_gateway",
    "proxy_route",
    "rpc_route",
    "serve_gateway",
    "serve_http",
    "start_http",
    "web_route",
]
