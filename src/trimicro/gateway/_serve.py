"""Serving: hypercorn's HTTP/1.1, HTTP/2 and websocket protocols on trio listeners we own.

`serve_http` is hypercorn's trio worker loop cut down to what a gateway needs (no lifespan,
no TLS, no reloader) so that each connection is our `HeadDeadlineServer`: hypercorn's own
`serve()` builds its connection class internally and has no place for the head deadline.

`open_gateway` wires the gateway: registry, cache, client, an httpx client for the proxy
handlers, and the HTTP server, all owned by the `async with`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import attrs
import httpx
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState

from .._config import ConfigError, resolve_proxy, resolve_registry, resolve_transport
from ..nursery import open_owned_nursery
from ..registry import open_registry, open_service_cache
from ..rpc import Client, TransportFor
from ..session import load_transport
from ._api import Cors, GatewayApp, HandlerName
from ._handlers import Backend
from ._limits import HeadDeadlineServer, HttpLimits, hypercorn_config

__all__ = [
    "DEFAULT_ADDRESS",
    "Gateway",
    "default_namespace",
    "open_gateway",
    "serve_gateway",
    "serve_http",
]

log = logging.getLogger("trimicro.gateway")

DEFAULT_ADDRESS = "127.0.0.1:8080"


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _bound(listener: trio.SocketListener) -> str:
    host, port = listener.socket.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_http(
    app: Callable[..., Awaitable[None]],
    address: str = DEFAULT_ADDRESS,
    *,
    limits: HttpLimits | None = None,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI `app` on `address` until cancelled or, gracefully, until `shutdown` is
    set: stop accepting, close idle connections, give requests in flight
    `limits.graceful_timeout`. `task_status.started` receives the bound `host:port`."""
    limits = limits or HttpLimits()
    host, port = _split(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    config = hypercorn_config(limits)
    context = WorkerContext(None)
    wrapped = ASGIWrapper(cast(ASGIFramework, app))

    async def connection(stream: trio.SocketStream) -> None:
        server = HeadDeadlineServer(
            wrapped, config, context, ConnectionState({}), stream, head_timeout=limits.head_timeout
        )
        await server.run()

    try:
        async with trio.open_nursery() as connections:
            await _accept_until(connections, connection, listeners, shutdown, task_status)
            await context.terminated.set()  # idle keep-alive connections close at once
            connections.cancel_scope.deadline = trio.current_time() + limits.graceful_timeout
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


async def _accept_until(
    connections: trio.Nursery,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    listeners: list[trio.SocketListener],
    shutdown: trio.Event | None,
    task_status: trio.TaskStatus[str],
) -> None:
    async with trio.open_nursery() as acceptor:
        serve = partial(trio.serve_listeners, handler, listeners, handler_nursery=connections)
        acceptor.start_soon(serve)
        task_status.started(_bound(listeners[0]))
        if shutdown is None:
            await trio.sleep_forever()
        await shutdown.wait()
        acceptor.cancel_scope.cancel()


def default_namespace(handler: HandlerName) -> str:
    """`trimicro.web` for the `web` handler, `trimicro.api` for the others (as micro)."""
    return "trimicro.web" if handler == "web" else "trimicro.api"


@attrs.define(eq=False)
class HttpServer:
    """A running HTTP server (see `start_http`): where it listens, and a graceful stop."""

    address: str
    _shutdown: trio.Event
    _stopped: trio.Event

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def drain(self) -> None:
        """Stop accepting, let requests in flight finish (within the graceful timeout)."""
        self._shutdown.set()
        await self._stopped.wait()


@attrs.define(eq=False)
class Gateway(HttpServer):
    """A running gateway: its app, where it listens, and a graceful stop."""

    app: GatewayApp = attrs.field(kw_only=True)


def upstream_http_client(limits: HttpLimits) -> httpx.AsyncClient:
    # trust_env=False: the environment's HTTP(S)_PROXY must not reroute calls to our backends.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(limits.call_timeout, connect=5.0),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        follow_redirects=False,
        trust_env=False,
    )


@asynccontextmanager
async def open_gateway(
    *,
    address: str = DEFAULT_ADDRESS,
    handler: HandlerName = "rpc",
    namespace: str | None = None,
    cors: Iterable[str] = (),
    limits: HttpLimits | None = None,
    registry: str | None = None,
    transport: str | None = None,
    proxy: str | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Gateway]:
    """Run an API gateway for the block; yields it once it listens. `proxy` (default
    `TRIMICRO_PROXY`): send every call through that proxy or network node, so services of
    other sites answer too (micro's `MICRO_PROXY=go.micro.network micro api`).

    Example::

        async with trimicro.gateway.open_gateway(address="127.0.0.1:0") as gateway:
            print(gateway.url)
    """
    limits = limits or HttpLimits()
    rng = rng or random.Random()
    transport_obj = load_transport(resolve_transport(transport))
    proxy = resolve_proxy(proxy)
    async with (
        open_registry(resolve_registry(registry)) as reg,
        open_service_cache(reg) as cache,
        open_owned_nursery() as client_nursery,
        upstream_http_client(limits) as http,
    ):
        client = Client(client_nursery, cache, TransportFor(transport_obj), rng=rng, proxy=proxy)
        backend = Backend(client, cache.get_service, _namespace(namespace, handler), limits, rng)
        app = GatewayApp(backend, http, handler=handler, cors=Cors(frozenset(cors)))
        try:
            async with open_owned_nursery() as server_nursery:
                gateway = await _start(server_nursery, app, address, limits)
                yield gateway
                server_nursery.cancel_scope.cancel()
        finally:
            await client.aclose()
            client_nursery.cancel_scope.cancel()


def _namespace(namespace: str | None, handler: HandlerName) -> str:
    return default_namespace(handler) if namespace is None else namespace


async def start_http(
    nursery: trio.Nursery, app: Any, address: str, limits: HttpLimits
) -> tuple[str, trio.Event, trio.Event]:
    """Serve `app` in `nursery`: (the bound address, the event that starts a graceful
    shutdown, the event set once the server stopped). The gateway, the dashboard and the
    sidecar all start this way."""
    shutdown, stopped = trio.Event(), trio.Event()

    async def serve(task_status: trio.TaskStatus[str]) -> None:
        try:
            await serve_http(
                app, address, limits=limits, shutdown=shutdown, task_status=task_status
            )
        finally:
            stopped.set()

    bound: str = await nursery.start(serve)
    return bound, shutdown, stopped


async def _start(
    nursery: trio.Nursery, app: GatewayApp, address: str, limits: HttpLimits
) -> Gateway:
    return Gateway(*await start_http(nursery, app, address, limits), app=app)


async def serve_gateway(
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a gateway (`open_gateway`'s options) until `shutdown_trigger` returns, then drain
    gracefully; without a trigger, until cancelled."""
    async with open_gateway(**options) as gateway:
        log.info("api gateway on %s (handler %s)", gateway.url, gateway.app.handler)
        task_status.started(gateway)
        await (shutdown_trigger or trio.sleep_forever)()
        await gateway.drain()
