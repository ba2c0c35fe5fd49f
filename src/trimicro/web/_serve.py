"""`open_dashboard`: registry, registry feed, client and HTTP server, owned by one
`async with`; `serve_dashboard` runs one until a shutdown trigger (the CLI's signals)."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from .._config import resolve_proxy, resolve_registry, resolve_transport
from ..gateway import Backend, HttpLimits, HttpServer, start_http
from ..gateway._serve import upstream_http_client
from ..nursery import Backoff, open_owned_nursery, supervise
from ..registry import open_registry, open_service_cache
from ..rpc import Client, TransportFor
from ..session import load_transport
from ._app import DashboardApp, web_limits
from ._apps import NAMESPACE, WebApps
from ._feed import RegistryFeed
from ._network import NetworkView, NodeView

__all__ = ["DEFAULT_ADDRESS", "Dashboard", "open_dashboard", "serve_dashboard"]

log = logging.getLogger("trimicro.web")

DEFAULT_ADDRESS = "127.0.0.1:8082"


@attrs.define(eq=False)
class Dashboard(HttpServer):
    """A running dashboard: its app, where it listens, and a graceful stop."""

    app: DashboardApp = attrs.field(kw_only=True)


@asynccontextmanager
async def open_dashboard(
    *,
    address: str = DEFAULT_ADDRESS,
    registry: str | None = None,
    transport: str | None = None,
    network: NetworkView | None = None,
    network_node: str | None = None,
    limits: HttpLimits | None = None,
    proxy: str | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Dashboard]:
    """Run the web dashboard for the block; yields it once it listens and watches.

    The network pages ask `network`, or else the network node whose RPC address is
    `network_node`; with neither they say they are not connected. `proxy` (default
    `TRIMICRO_PROXY`): the dashboard's calls go through that proxy or network node.

    Example::

        async with trimicro.web.open_dashboard(address="127.0.0.1:0") as dashboard:
            print(dashboard.url)
    """
    limits = limits or web_limits()
    transport_obj = load_transport(resolve_transport(transport))
    proxy = resolve_proxy(proxy)
    async with (
        open_registry(resolve_registry(registry)) as reg,
        open_service_cache(reg) as cache,
        open_owned_nursery() as nursery,
        upstream_http_client(limits) as http,
    ):
        rng = rng or random.Random()
        client = Client(nursery, cache, TransportFor(transport_obj), rng=rng, proxy=proxy)
        apps = WebApps(Backend(client, cache.get_service, NAMESPACE, limits, rng), http)
        feed = RegistryFeed(reg)
        nursery.start_soon(lambda: supervise(feed.run, name="web-feed", backoff=Backoff()))
        if network is None and network_node is not None:
            network = NodeView(client, network_node)
        app = DashboardApp(reg, client, feed, network=network, limits=limits, apps=apps)
        try:
            await feed.watching.wait()  # changes from here on reach the live pages
            yield await _start(nursery, app, address, limits)
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


async def _start(
    nursery: trio.Nursery, app: DashboardApp, address: str, limits: HttpLimits
) -> Dashboard:
    return Dashboard(*await start_http(nursery, app, address, limits), app=app)


async def serve_dashboard(
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[Dashboard] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a dashboard (`open_dashboard`'s options) until `shutdown_trigger` returns, then
    drain gracefully; without a trigger, until cancelled."""
    async with open_dashboard(**options) as dashboard:
        log.info("web dashboard on %s", dashboard.url)
        task_status.started(dashboard)
        await (shutdown_trigger or trio.sleep_forever)()
        await dashboard.drain()
