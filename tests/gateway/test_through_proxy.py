"""The gateway and the dashboard honour a proxy (`proxy=`, `--proxy`, `TRIMICRO_PROXY`): a
service of another site, unknown to this site's registry, answers through it — micro's
`MICRO_PROXY=go.micro.network micro api` across sites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

import trimicro
from trimicro.gateway import open_gateway
from trimicro.web import open_dashboard

from .conftest import _TLS


def _greeter() -> trimicro.Service:
    service = trimicro.Service("greeter", registry="memory://site-b", transport="tcp://")

    @service.endpoint("Say.Hello")
    async def hello(req: dict[str, str]) -> dict[str, str]:
        return {"msg": f"Hello {req['name']}", "hops": trimicro.current_call().metadata.get(
            "trimicro-hops", "0")}  # fmt: skip

    return service


@asynccontextmanager
async def _two_sites() -> AsyncIterator[None]:
    """Site b runs greeter; site a's registry knows only a proxy that reaches it."""
    async with _greeter().run() as greeter:

        async def routes(service: str) -> list[str | None]:
            return [f"tcp://{greeter.address}"] if service == "greeter" else []

        proxy = trimicro.Service("trimicro.proxy", registry="memory://site-a", transport="tcp://")
        proxy.forward(routes)  # type: ignore[arg-type]
        async with proxy.run():
            yield


def _http(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, trust_env=False, timeout=10, verify=_TLS)


async def test_the_gateway_reaches_another_sites_service_through_the_proxy() -> None:
    async with (
        _two_sites(),
        open_gateway(
            address="127.0.0.1:0",
            namespace="",
            registry="memory://site-a",
            transport="tcp://",
            proxy="trimicro.proxy",
        ) as gateway,  # fmt: skip
        _http(gateway.url) as http,
    ):
        by_path = await http.post("/greeter/say/hello", json={"name": "Ann"})
        by_rpc = await http.post(
            "/rpc", json={"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "Bo"}}
        )
        nothing = await http.post("/nobody/x/y", json={})
    assert by_path.status_code == 200, by_path.text
    assert by_path.json() == {"msg": "Hello Ann", "hops": "1"}  # through the proxy
    assert by_rpc.json() == {"msg": "Hello Bo", "hops": "1"}
    assert nothing.status_code == 503  # the proxy knows no route to it either


async def test_without_the_proxy_the_other_site_is_not_found() -> None:
    async with (
        _two_sites(),
        open_gateway(
            address="127.0.0.1:0", namespace="", registry="memory://site-a", transport="tcp://"
        ) as gateway,  # fmt: skip
        _http(gateway.url) as http,
    ):
        assert (await http.post("/greeter/say/hello", json={"name": "Ann"})).status_code == 404


async def test_the_proxy_comes_from_trimicro_proxy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRIMICRO_PROXY", "trimicro.proxy")
    async with (
        _two_sites(),
        open_gateway(
            address="127.0.0.1:0", namespace="", registry="memory://site-a", transport="tcp://"
        ) as gateway,  # fmt: skip
        _http(gateway.url) as http,
    ):
        reply = await http.post("/greeter/say/hello", json={"name": "Cy"})
    assert reply.json() == {"msg": "Hello Cy", "hops": "1"}


async def test_the_dashboards_calls_go_through_the_proxy() -> None:
    async with (
        _two_sites(),
        open_dashboard(
            address="127.0.0.1:0",
            registry="memory://site-a",
            transport="tcp://",
            proxy="trimicro.proxy",
        ) as dashboard,  # fmt: skip
        _http(dashboard.url) as http,
    ):
        body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "Di"}}
        with trio.fail_after(10):
            reply = await http.post("/api/call", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"msg": "Hello Di", "hops": "1"}
