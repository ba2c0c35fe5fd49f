"""`open_sidecar`: the app's presence in the registry, its calls, and the HTTP surface.

One `async with` owns: a registry connection and cache, a broker, a client, an httpx client
(the app's calls and its health checks), the health-check task, the presence task and the
HTTP server. The presence task serves the app's name on the trimicro transport while the app
is healthy: it runs a `Service` named after the app whose endpoints are proxied to the app
over HTTP (`_proxy.py`), and leaves it — deregister, drain, close — when a check fails, to
run it again once the app recovers. Stopping does the same first, then drains the HTTP
server, then deregisters what apps posted to `/registry`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio

from .._config import (
    ConfigError,
    check_tls,
    resolve_address,
    resolve_broker,
    resolve_proxy,
    resolve_registry,
    resolve_transport,
)
from .._service import RunningService, Service
from ..broker import open_broker
from ..gateway import Backend, HttpLimits, HttpServer, start_http
from ..nursery import open_owned_nursery
from ..registry import Node, open_registry, open_service_cache
from ..rpc import Client, TransportFor
from ..session import load_transport
from ._app import SidecarApp
from ._health import DEFAULT_INTERVAL, AppHealth, check_health
from ._proxy import AppEndpoint, AppProxy
from ._registrations import Registrations

__all__ = ["DEFAULT_ADDRESS", "Presence", "Sidecar", "app_url", "open_sidecar", "serve_sidecar"]

log = logging.getLogger("trimicro.sidecar")

DEFAULT_ADDRESS = "127.0.0.1:8081"

#: Node metadata marking the app's node: it is an HTTP app behind a sidecar, and where.
SIDECAR_KEY = "sidecar"
HTTP_ADDRESS_KEY = "http_address"


def app_url(address: str) -> tuple[str, str]:
    """`HOST:PORT` or `http(s)://HOST:PORT` → (base URL, `HOST:PORT`); ConfigError else."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "http", address
    host, colon, port = rest.rstrip("/").rpartition(":")
    if scheme not in ("http", "https") or not colon or not host or not port.isdigit():
        raise ConfigError(f"server address {address!r} is not HOST:PORT or http://HOST:PORT")
    if int(port) > 65535 or "/" in host or any(c.isspace() for c in host):
        raise ConfigError(f"server address {address!r} is not HOST:PORT or http://HOST:PORT")
    return f"{scheme}://{host}:{port}", f"{host}:{port}"


@attrs.define(eq=False)
class Presence:
    """Runs `service` (the app's name, proxied) whenever the app is healthy."""

    service: Service
    health: AppHealth
    retry_after: float = DEFAULT_INTERVAL
    running: RunningService | None = None
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _stopped: trio.Event = attrs.field(factory=trio.Event)

    @property
    def node(self) -> Node | None:
        return None if self.running is None else self.running.node

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            with self._scope:
                while True:
                    await self.health.wait_for(True)
                    try:
                        await self._serve_while_healthy()
                    except ConfigError:
                        raise  # a bad setting stays bad: retrying would only log it forever
                    except OSError as exc:  # e.g. the address cannot be bound (yet)
                        log.warning("could not serve %s: %s", self.service.name, exc)
                        await trio.sleep(self.retry_after)
                    except Exception:  # e.g. the registry refused: try again later
                        log.exception("could not register %s", self.service.name)
                        await trio.sleep(self.retry_after)
        finally:
            self._stopped.set()

    async def _serve_while_healthy(self) -> None:
        name = self.service.name
        async with self.service.run() as running:
            self.running = running
            log.info("%s registered: node %s on %s", name, running.node.id, running.address)
            try:
                await self.health.wait_for(False)
                log.warning("%s is unhealthy (%s): deregistering", name, self.health.reason)
            finally:
                self.running = None

    async def stop(self) -> None:
        """Deregister and drain (if serving), and stay stopped."""
        self._scope.cancel()
        await self._stopped.wait()


@attrs.define(eq=False)
class Sidecar(HttpServer):
    """A running sidecar: its app, the app's presence, where it listens, a graceful stop."""

    app: SidecarApp = attrs.field(kw_only=True)
    presence: Presence = attrs.field(kw_only=True)

    async def drain(self) -> None:
        """Leave the registry (the app's node first), then let HTTP requests finish."""
        await self.presence.stop()
        await super().drain()


def _http_client(limits: HttpLimits) -> httpx.AsyncClient:
    # trust_env=False: the environment's HTTP(S)_PROXY must not reroute calls to the app.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(limits.call_timeout, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=False,
        trust_env=False,
    )


def app_service(
    name: str, endpoints: Iterable[AppEndpoint], app_proxy: AppProxy, **options: Any
) -> Service:
    """The `Service` that stands for the app: each endpoint POSTs to the app, declared ones
    to their path and any other to its default path (the registry lists only declared ones).
    `options` go to `Service` (`proxy=` among them: where the service's own calls go)."""
    service = Service(name, **options)
    for endpoint in endpoints:
        service.endpoint(endpoint.name)(app_proxy.handler(endpoint))
    service.fallback(app_proxy.any_endpoint)
    return service


@asynccontextmanager
async def open_sidecar(
    *,
    name: str,
    server_address: str,
    healthcheck: str | None = None,
    endpoints: Iterable[AppEndpoint] = (),
    address: str = DEFAULT_ADDRESS,
    rpc_address: str | None = None,
    version: str = "latest",
    metadata: Mapping[str, str] | None = None,
    health_interval: float = DEFAULT_INTERVAL,
    register_ttl: float = 60.0,
    register_interval: float = 30.0,
    registry: str | None = None,
    transport: str | None = None,
    broker: str | None = None,
    proxy: str | None = None,
    limits: HttpLimits | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Sidecar]:
    """Run a sidecar for the HTTP app `name` at `server_address` for the block; yields it
    once its HTTP server listens (the app registers as soon as a health check passes).
    `proxy` (default `TRIMICRO_PROXY`): `/rpc` calls, and the app's service's own calls, go
    through that proxy or network node.

    Example::

        endpoints = [parse_endpoint("Say.Hello")]
        async with open_sidecar(name="hello", server_address="127.0.0.1:9000",
                                healthcheck="http://127.0.0.1:9000/health",
                                endpoints=endpoints) as sidecar:
            print(sidecar.url)
    """
    limits = limits or HttpLimits()
    rng = rng or random.Random()
    base_url, http_address = app_url(server_address)
    # Every setting is checked here, before anything starts: the app's service only runs once
    # a health check passes, and a bad value found then would fail each registration.
    registry_url, broker_url = resolve_registry(registry), resolve_broker(broker)
    transport_url = resolve_transport(transport)
    rpc_address, proxy = resolve_address(rpc_address), resolve_proxy(proxy)
    check_tls()
    transport_obj = load_transport(transport_url)
    async with (
        open_registry(registry_url) as reg,
        open_service_cache(reg) as cache,
        open_broker(broker_url, registry=reg, transport=transport_obj, rng=rng) as brk,
        open_owned_nursery() as nursery,
        _http_client(limits) as http,
    ):
        client = Client(
            nursery, cache, TransportFor(transport_obj), rng=rng, broker=brk, proxy=proxy
        )
        health = AppHealth()
        service = app_service(
            name, endpoints, AppProxy(name, base_url, http),
            version=version, metadata=dict(metadata or {}), address=rpc_address,
            registry=registry_url, transport=transport_url, broker=broker_url, proxy=proxy,
            register_ttl=register_ttl, register_interval=register_interval,
            drain_timeout=limits.graceful_timeout, rng=rng,
            node_metadata={SIDECAR_KEY: "http", HTTP_ADDRESS_KEY: http_address},
        )  # fmt: skip
        presence = Presence(service, health, retry_after=health_interval)
        registrations = Registrations(reg, nursery, register_ttl, register_interval)
        backend = Backend(client, cache.get_service, "", limits, rng)
        app = SidecarApp(name, backend, reg, registrations, brk, health, lambda: presence.node)
        try:
            await nursery.start(check_health, http, healthcheck, health, health_interval)
            await nursery.start(presence.run)
            async with open_owned_nursery() as server_nursery:
                yield await _start(server_nursery, app, presence, address, limits)
                server_nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await presence.stop()
                await registrations.clear()
                await client.aclose()
            nursery.cancel_scope.cancel()


async def _start(
    nursery: trio.Nursery, app: SidecarApp, presence: Presence, address: str, limits: HttpLimits
) -> Sidecar:
    return Sidecar(*await start_http(nursery, app, address, limits), app=app, presence=presence)


async def serve_sidecar(
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[Sidecar] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Run a sidecar (`open_sidecar`'s options) until `shutdown_trigger` returns, then leave
    the registry and drain; without a trigger, until cancelled."""
    async with open_sidecar(**options) as sidecar:
        log.info("sidecar for %s on %s", sidecar.app.name, sidecar.url)
        task_status.started(sidecar)
        await (shutdown_trigger or trio.sleep_forever)()
        await sidecar.drain()
