"""A proxy forwards calls for any service: raw bodies, budgets, cancellation, streams, loops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

import trimicro
from trimicro import errors
from trimicro.rpc import Client, Stream
from trimicro.testing import Cluster, open_cluster


def _backend(seen: dict[str, object]) -> trimicro.Service:
    service = trimicro.Service("greeter")

    @service.endpoint("Say.Hello")
    async def hello(req: dict[str, str]) -> dict[str, str]:
        seen["hops"] = trimicro.current_call().metadata.get("trimicro-hops")
        seen["budget"] = trimicro.current_call().remaining()
        if not req.get("name"):
            raise errors.bad_request("name must not be empty")
        return {"msg": f"Hello {req['name']}"}

    @service.endpoint("Say.Slowly")
    async def slowly(req: dict[str, str]) -> dict[str, str]:
        seen["started"] = trio.current_time()
        try:
            await trio.sleep(10)
        finally:
            seen["ended"] = trio.current_time()
        return {}

    @service.stream_endpoint("Say.Echo")
    async def echo(req: None, stream: Stream[str]) -> None:
        async for word in stream:
            await stream.send(word.upper())

    return service


def _proxy(routes: object = None) -> trimicro.Service:
    proxy = trimicro.Service("trimicro.proxy")
    proxy.forward(routes)  # type: ignore[arg-type]
    return proxy


@asynccontextmanager
async def _through(cluster: Cluster, proxy: str = "trimicro.proxy") -> AsyncIterator[Client]:
    async with trimicro.open_client(
        registry=cluster.registry, transport=cluster.transport, proxy=proxy
    ) as client:
        yield client


async def test_a_call_goes_through_the_proxy_named_in_the_registry() -> None:
    seen: dict[str, object] = {}
    proxy = _proxy()
    async with open_cluster(_backend(seen), proxy) as cluster, _through(cluster) as client:
        reply = await client.call("greeter", "Say.Hello", {"name": "Ann"})
        assert reply == {"msg": "Hello Ann"}
        assert seen["hops"] == "1"  # it really went through one proxy
        assert cluster.node("trimicro.proxy").server.forwarder is not None
        assert cluster.node("trimicro.proxy").server.forwarder.forwarded == 1


async def test_a_proxy_address_works_as_well_as_a_name() -> None:
    seen: dict[str, object] = {}
    async with open_cluster(_backend(seen), _proxy()) as cluster:
        address = cluster.node("trimicro.proxy").address
        async with _through(cluster, f"memory://{address}") as client:
            assert await client.call("greeter", "Say.Hello", {"name": "Bo"}) == {"msg": "Hello Bo"}
        assert seen["hops"] == "1"


async def test_remote_errors_keep_their_code_and_detail_through_the_proxy() -> None:
    async with open_cluster(_backend({}), _proxy()) as cluster, _through(cluster) as client:
        with pytest.raises(errors.Error) as caught:
            await client.call("greeter", "Say.Hello", {"name": ""})
        assert (caught.value.code, caught.value.id) == (400, "greeter")
        assert caught.value.detail == "name must not be empty"


async def test_the_proxy_serves_its_own_endpoints_itself() -> None:
    async with open_cluster(_backend({}), _proxy()) as cluster, _through(cluster) as client:
        health = await client.call("trimicro.proxy", "Debug.Health", {})
        assert health == {"status": "ok"}
        assert cluster.node("trimicro.proxy").server.forwarder.forwarded == 0  # type: ignore[union-attr]


async def test_an_unknown_service_is_unavailable_at_the_caller() -> None:
    async with open_cluster(_backend({}), _proxy()) as cluster, _through(cluster) as client:
        with pytest.raises(errors.Error) as caught:
            await client.call("nobody", "X.Y", {})
        assert caught.value.code == 503
        assert "nobody" in caught.value.detail


async def test_budget_and_cancellation_cross_the_proxy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: dict[str, object] = {}
    async with open_cluster(_backend(seen), _proxy()) as cluster, _through(cluster) as client:
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(1):
                await client.call("greeter", "Say.Slowly", {})
        gave_up = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        assert gave_up - start == pytest.approx(1.0)
        assert seen["ended"] == pytest.approx(gave_up)  # the backend handler was cancelled

        with trio.fail_after(5):
            await client.call("greeter", "Say.Hello", {"name": "Cy"})
        assert seen["budget"] == pytest.approx(5.0)  # the caller's budget, intact


async def test_a_caller_cancelling_cancels_the_backend_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: dict[str, object] = {}
    async with open_cluster(_backend(seen), _proxy()) as cluster, _through(cluster) as client:
        with trio.CancelScope() as scope:  # no deadline on the wire: a cancel frame does it

            async def cancel_later() -> None:
                await trio.sleep(2)
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_later)
                await client.call("greeter", "Say.Slowly", {})
        assert scope.cancelled_caught
        await trio.testing.wait_all_tasks_blocked()
        assert seen["ended"] == pytest.approx(float(seen["started"]) + 2)  # type: ignore[arg-type]


async def test_a_bidirectional_stream_is_pumped_both_ways() -> None:
    async with open_cluster(_backend({}), _proxy()) as cluster, _through(cluster) as client:
        async with client.stream("greeter", "Say.Echo") as stream:
            replies = []
            for word in ("a", "b", "c") * 50:  # more than a credit window each way
                await stream.send(word)
                replies.append(await stream.receive())
            await stream.close_send()
            with pytest.raises(trio.EndOfChannel):
                await stream.receive()
        assert replies == ["A", "B", "C"] * 50


async def test_routes_are_tried_in_order_past_unreachable_ones() -> None:
    tried: list[str | None] = []
    async with open_cluster(_backend({})) as cluster:
        backend = cluster.node("greeter").address

        async def routes(service: str) -> list[str | None]:
            tried.append(service)
            return ["memory://nowhere:1", f"memory://{backend}"]

        proxy = _proxy(routes)
        proxy.registry, proxy.transport = cluster.registry, cluster.transport
        async with proxy.run(), _through(cluster) as client:
            reply = await client.call("greeter", "Say.Hello", {"name": "Di"})
    assert reply == {"msg": "Hello Di"}
    assert tried == ["greeter"]


async def test_a_forwarding_loop_is_stopped_with_508() -> None:
    async with open_cluster(_backend({})) as cluster:
        proxy = _proxy()
        proxy.registry, proxy.transport = cluster.registry, cluster.transport
        address: list[str] = []

        async def back_to_myself(service: str) -> list[str | None]:
            return [f"memory://{address[0]}"]

        proxy.forward(back_to_myself)
        async with proxy.run() as running, _through(cluster) as client:
            address.append(running.address)
            with pytest.raises(errors.Error) as caught:
                await client.call("greeter", "Say.Hello", {"name": "Ed"})
    assert caught.value.code == 508
    assert "forwarded 8 times" in caught.value.detail


async def test_a_client_with_a_proxy_publishes_through_it() -> None:
    got: list[object] = []
    subscriber = trimicro.Service("audit")

    @subscriber.subscribe("events")
    async def audit(message: dict[str, int]) -> None:
        got.append(message)

    proxy = _proxy()
    async with open_cluster(subscriber, proxy) as cluster:
        address = cluster.node("trimicro.proxy").address
        for target in ("trimicro.proxy", f"memory://{address}"):
            async with _through(cluster, target) as client:
                await client.publish("events", {"via": len(got)})
        await trio.testing.wait_all_tasks_blocked()
    assert got == [{"via": 0}, {"via": 1}]
    assert cluster.node("trimicro.proxy").server.statistics().requests == 2
