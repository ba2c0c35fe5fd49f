"""Web dashboard fixtures: real services over TCP on a memory registry, the dashboard on a
real loopback port."""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import attrs
import httpx
import trio

import trimicro
from trimicro import RunningService
from trimicro.web import Dashboard, NetworkView, open_dashboard

#: Metadata no page may turn into markup.
XSS = '<img src=x onerror="window.__xss=1">'

_names = itertools.count(1)


@attrs.frozen
class HelloRequest:
    name: str


@attrs.frozen
class HelloResponse:
    msg: str


def make_greeter(name: str = "greeter", version: str = "1.0.0") -> trimicro.Service:
    service = trimicro.Service(
        name, version=version, metadata={"team": "core", "note": XSS}, transport="tcp://"
    )

    @service.endpoint("Say.Hello")
    async def hello(req: HelloRequest) -> HelloResponse:
        if not req.name:
            raise trimicro.errors.bad_request("name must not be empty")
        return HelloResponse(msg=f"Hello {req.name}")

    @service.endpoint("Say.Stall")
    async def stall(req: None) -> None:
        await trio.sleep_forever()

    @service.stream_endpoint("Say.Count")
    async def count(req: dict[str, int], stream: trimicro.Stream[None]) -> None:
        for i in range(req["to"]):
            await stream.send({"i": i})

    return service


@attrs.frozen
class Site:
    """A dashboard and the registry its services use."""

    dashboard: Dashboard
    registry: str
    stack: AsyncExitStack

    @property
    def url(self) -> str:
        return self.dashboard.url

    def run(self, service: trimicro.Service) -> AbstractAsyncContextManager[RunningService]:
        """`service.run()` on this site's registry."""
        service.registry, service.broker = self.registry, self.registry
        return service.run()

    async def start(self, service: trimicro.Service) -> RunningService:
        """Start `service` on this site; it stops when the site does."""
        return await self.stack.enter_async_context(self.run(service))


@asynccontextmanager
async def running_dashboard(
    *services: trimicro.Service, network: NetworkView | None = None
) -> AsyncIterator[Site]:
    registry = f"memory://web-{next(_names)}"
    async with AsyncExitStack() as stack:
        dashboard = await stack.enter_async_context(
            open_dashboard(
                address="127.0.0.1:0", registry=registry, transport="tcp://", network=network
            )
        )
        site = Site(dashboard, registry, stack)
        for service in services:
            await site.start(service)
        yield site


#: Shared: building an SSL context is most of what creating an httpx client costs.
_TLS = ssl.create_default_context()


def http_client(site: Site) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=site.url, trust_env=False, timeout=10, verify=_TLS)
