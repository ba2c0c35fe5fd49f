"""The sidecar (`trimicro sidecar`): a non-Python HTTP app joins the services.

The sidecar registers the app under its name while the app's health check passes, and
deregisters it when a check fails or the sidecar stops. Calls to the app's name reach the
sidecar on the trimicro transport and are proxied to the app: endpoint `Say.Hello` becomes
`POST http://app/say/hello` with the request as JSON (`--endpoint NAME=PATH` picks another
path), and the HTTP status comes back as the error code. The app in turn uses the sidecar's
HTTP surface: `/registry`, `/rpc`, `/broker` (publish, and subscribe over a websocket) and
`/health`. docs/sidecar.md has the details.

Example::

    from trimicro.sidecar import open_sidecar, parse_endpoint

    async with open_sidecar(
        name="hello", server_address="127.0.0.1:9000",
        healthcheck="http://127.0.0.1:9000/health", endpoints=[parse_endpoint("Say.Hello")],
    ) as sidecar:
        await trio.sleep_forever()
"""

from ._app import SidecarApp as SidecarApp
from ._health import DEFAULT_INTERVAL as DEFAULT_INTERVAL
from ._health import AppHealth as AppHealth
from ._proxy import AppEndpoint as AppEndpoint
from ._proxy import AppProxy as AppProxy
from ._proxy import endpoint_path as endpoint_path
from ._proxy import parse_endpoint as parse_endpoint
from ._registrations import SIDECAR_ID as SIDECAR_ID
from ._registrations import parse_record as parse_record
from ._serve import DEFAULT_ADDRESS as DEFAULT_ADDRESS
from ._serve import Sidecar as Sidecar
from ._serve import app_url as app_url
from ._serve import open_sidecar as open_sidecar
from ._serve import serve_sidecar as serve_sidecar

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_INTERVAL",
    "SIDECAR_ID",
    "AppEndpoint",
    "AppHealth",
    "AppProxy",
    "Sidecar",
    "SidecarApp",
    "app_url",
    "endpoint_path",
    "open_sidecar",
    "parse_endpoint",
    "parse_record",
    "serve_sidecar",
]
