"""Web apps behind the dashboard: `/<name>/...` goes to the service `trimicro.web.<name>`,
HTTP and websockets, as micro web does (the gateway's `web` handler does the proxying).

The dashboard's own paths (`/`, `/static/`, `/service/`, `/network`, `/api/`, `/ws/`) are
never proxied, so a web app named `static`, `service`, `network`, `api` or `ws` is reachable
only through `trimicro api --handler web`.
"""

from __future__ import annotations

import attrs
import httpx

from ..gateway import Backend, web_route
from ..gateway._http import HttpRequest, Receive, Send
from ..gateway._proxy import proxy_http, proxy_websocket, web_target

__all__ = ["NAMESPACE", "RESERVED", "WebApps"]

NAMESPACE = "trimicro.web"
RESERVED = frozenset({"static", "service", "network", "api", "ws"})


@attrs.define(eq=False)
class WebApps:
    """Proxies a request to the web app its first path segment names."""

    backend: Backend
    http_client: httpx.AsyncClient

    def serves(self, path: str) -> bool:
        """Whether `path` is a web app's (not one of the dashboard's own)."""
        found = web_route(path)
        return found is not None and found[0] not in RESERVED

    async def http(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        target = web_target(NAMESPACE, request)
        await proxy_http(self.backend, self.http_client, request, receive, send, target)

    async def websocket(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        await proxy_websocket(self.backend, request, receive, send, web_target(NAMESPACE, request))
