"""Gateway fixtures: services in an in-memory cluster, the gateway on a real loopback port."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import attrs
import httpx
import trio

import trimicro
from trimicro.gateway import Gateway, HandlerName, HttpLimits, open_gateway
from trimicro.testing import Cluster, open_cluster


@attrs.frozen
class HelloRequest:
    name: str


@attrs.frozen
class HelloResponse:
    msg: str


@attrs.frozen
class Typed:
    count: int
    ratio: float = 0.0
    loud: bool = False
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class Number:
    value: int


def make_greeter(name: str = "greeter") -> trimicro.Service:
    service = trimicro.Service(name, version="1.0.0")

    @service.endpoint("Say.Hello")
    async def hello(req: HelloRequest) -> HelloResponse:
        if not req.name:
            raise trimicro.errors.bad_request("name must not be empty")
        return HelloResponse(msg=f"Hello {req.name}")

    @service.endpoint("Say.Metadata")
    async def metadata(req: None) -> dict[str, str]:
        return dict(trimicro.current_call().metadata)

    @service.endpoint("Say.Typed")
    async def typed(req: Typed) -> Typed:
        return req

    @service.endpoint("Say.Sleep")
    async def sleep(req: dict[str, float]) -> dict[str, float]:
        await trio.sleep(req["seconds"])
        return req

    return service


def make_counter(name: str = "counter") -> trimicro.Service:
    service = trimicro.Service(name)

    @service.stream_endpoint("Count.Up")
    async def up(req: dict[str, int], stream: trimicro.Stream[None]) -> None:
        for i in range(req["to"]):
            await stream.send(Number(i))

    @service.stream_endpoint("Count.Sum")
    async def total(req: None, stream: trimicro.Stream[Number]) -> None:
        numbers = [n.value async for n in stream]
        await stream.send({"sum": sum(numbers), "count": len(numbers)})

    @service.stream_endpoint("Count.Echo")
    async def echo(req: None, stream: trimicro.Stream[None]) -> None:
        async for message in stream:
            await stream.send(message)

    @service.stream_endpoint("Count.Fail")
    async def fail(req: None, stream: trimicro.Stream[None]) -> None:
        await stream.send({"first": True})
        raise trimicro.errors.conflict("counter is in the wrong state")

    return service


@asynccontextmanager
async def running_gateway(
    *services: trimicro.Service,
    handler: HandlerName = "rpc",
    namespace: str = "",
    limits: HttpLimits | None = None,
    cors: Iterable[str] = (),
) -> AsyncIterator[tuple[Gateway, Cluster]]:
    """`services` in a cluster and a gateway in front of them on 127.0.0.1:<free port>."""
    async with (
        open_cluster(*services) as cluster,
        open_gateway(
            address="127.0.0.1:0",
            handler=handler,
            namespace=namespace,
            limits=limits,
            cors=cors,
            registry=cluster.registry,
            transport=cluster.transport,
        ) as gateway,
    ):
        yield gateway, cluster


#: Shared: building an SSL context is most of what creating an httpx client costs (~18 ms).
_TLS = ssl.create_default_context()


def http_client(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.url, trust_env=False, timeout=10, verify=_TLS)
