"""Unary calls through a real server and client over the in-memory transport."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

import trimicro
from trimicro import errors
from trimicro.rpc._retry import RetryPolicy
from trimicro.testing import open_cluster


@attrs.frozen
class HelloRequest:
    name: str


@attrs.frozen
class HelloResponse:
    msg: str


def make_greeter() -> trimicro.Service:
    service = trimicro.Service("greeter", version="1.0.0")

    @service.endpoint("Say.Hello")
    async def hello(req: HelloRequest) -> HelloResponse:
        if not req.name:
            raise errors.bad_request("name must not be empty")
        return HelloResponse(msg=f"Hello {req.name}")

    @service.endpoint("Say.Boom")
    async def boom(req: dict[str, str]) -> dict[str, str]:
        raise RuntimeError("secret database password in this message")

    @service.endpoint("Say.Meta")
    async def meta(req: dict[str, str]) -> dict[str, str]:
        call = trimicro.current_call()
        return {"trace": call.metadata["X-Trace-Id"], "endpoint": call.endpoint}

    return service


async def test_call_structures_request_and_response() -> None:
    async with open_cluster(make_greeter()) as cluster:
        reply = await cluster.client.call(
            "greeter", "Say.Hello", HelloRequest("Ann"), response=HelloResponse
        )
    assert reply == HelloResponse(msg="Hello Ann")


async def test_call_without_response_type_returns_plain_data() -> None:
    async with open_cluster(make_greeter()) as cluster:
        reply = await cluster.client.call("greeter", "Say.Hello", {"name": "Bob"})
    assert reply == {"msg": "Hello Bob"}


async def test_handler_error_reaches_caller_as_is() -> None:
    async with open_cluster(make_greeter()) as cluster:
        with pytest.raises(errors.Error) as info:
            await cluster.client.call("greeter", "Say.Hello", {"name": ""})
    assert info.value.to_dict() == {
        "id": "greeter",
        "code": 400,
        "detail": "name must not be empty",
        "status": "Bad Request",
    }


async def test_unexpected_exception_is_500_without_internals() -> None:
    async with open_cluster(make_greeter()) as cluster:
        with pytest.raises(errors.Error) as info:
            await cluster.client.call("greeter", "Say.Boom", {})
    assert info.value.code == 500
    assert "secret" not in info.value.detail


async def test_bad_request_body_is_400_naming_the_field() -> None:
    async with open_cluster(make_greeter()) as cluster:
        with pytest.raises(errors.Error) as info:
            await cluster.client.call("greeter", "Say.Hello", {"name": 42})
    assert info.value.code == 400
    assert "name" in info.value.detail


async def test_unknown_endpoint_is_404_and_unknown_service_is_503() -> None:
    async with open_cluster(make_greeter()) as cluster:
        with pytest.raises(errors.Error) as endpoint:
            await cluster.client.call("greeter", "Say.Nothing", {})
        with pytest.raises(errors.Error) as service:
            await cluster.client.call("nobody", "Say.Hello", {})
    assert endpoint.value.code == 404
    assert (service.value.code, service.value.id) == (503, "trimicro.client")


async def test_metadata_is_case_insensitive_in_the_handler() -> None:
    async with open_cluster(make_greeter()) as cluster:
        reply = await cluster.client.call("greeter", "Say.Meta", {}, metadata={"x-trace-id": "abc"})
    assert reply == {"trace": "abc", "endpoint": "Say.Meta"}


async def test_nested_call_uses_current_client_and_carries_metadata() -> None:
    front = trimicro.Service("front")

    @front.endpoint("Front.Relay")
    async def relay(req: dict[str, str]) -> dict[str, str]:
        reply: dict[str, str] = await trimicro.current_client().call("greeter", "Say.Meta", {})
        return reply

    async with open_cluster(make_greeter(), front) as cluster:
        reply = await cluster.client.call(
            "front", "Front.Relay", {}, metadata={"X-Trace-Id": "t-1"}
        )
    assert reply == {"trace": "t-1", "endpoint": "Say.Meta"}


async def test_debug_health_and_stats() -> None:
    async with open_cluster(make_greeter()) as cluster:
        await cluster.client.call("greeter", "Say.Hello", {"name": "x"})
        health = await cluster.client.call("greeter", "Debug.Health", {})
        stats = await cluster.client.call("greeter", "Debug.Stats", {})
    assert health == {"status": "ok"}
    assert set(stats) == {
        "started",
        "uptime",
        "requests",
        "errors",
        "in_flight",
        "tasks",
        "memory_rss",
        "client",
    }
    assert stats["client"] == {
        "connections": 0,
        "calls_in_flight": 0,
        "retries": 0,
        "retries_refused": 0,
        "ejected_nodes": 0,
    }
    assert stats["requests"] == 3  # Say.Hello, Debug.Health, and this Debug.Stats
    assert stats["in_flight"] == 1  # this very call
    assert stats["memory_rss"] > 0


async def test_many_concurrent_calls_share_one_connection() -> None:
    async with open_cluster(make_greeter()) as cluster:
        replies: list[str] = []

        async def one(i: int) -> None:
            reply = await cluster.client.call("greeter", "Say.Hello", {"name": str(i)})
            replies.append(reply["msg"])

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(one, i)
        assert len(cluster.client._peers) == 1
    assert sorted(replies) == sorted(f"Hello {i}" for i in range(200))


async def test_calls_beyond_max_concurrency_are_refused_with_503(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("narrow", max_concurrency=2)

    @service.endpoint("Narrow.Wait")
    async def wait(req: None) -> dict[str, str]:
        await trio.sleep(1)
        return {"ok": "yes"}

    async with open_cluster(service) as cluster:
        cluster.client.policy = RetryPolicy(retries=0)  # see the refusal itself
        outcomes: list[object] = []

        async def one() -> None:
            try:
                outcomes.append(await cluster.client.call("narrow", "Narrow.Wait"))
            except errors.Error as exc:
                outcomes.append(exc.code)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
    assert sorted(map(str, outcomes)) == sorted(["503", str({"ok": "yes"}), str({"ok": "yes"})])


async def test_idle_connections_close_after_their_ttl(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_cluster(make_greeter()) as cluster:
        await cluster.client.call("greeter", "Say.Hello", {"name": "x"})
        assert cluster.client.statistics().connections == 1
        await trio.sleep(59)
        assert cluster.client.statistics().connections == 1
        await trio.sleep(20)  # the sweep runs every 15 s: closed by 75 s of idleness
        assert cluster.client.statistics().connections == 0
        assert await cluster.client.call("greeter", "Say.Hello", {"name": "y"})  # redials


async def test_a_fallback_answers_undeclared_unary_endpoints_only() -> None:
    import trimicro
    from trimicro.testing import open_cluster

    service = trimicro.Service("app")

    @service.endpoint("Known.Call")
    async def known(req: None) -> str:
        return "declared"

    @service.fallback
    async def anything(endpoint: str, request: object) -> object:
        return {"endpoint": endpoint, "request": request}

    async with open_cluster(service) as cluster:
        client = cluster.client
        assert await client.call("app", "Known.Call", None) == "declared"
        assert await client.call("app", "Any.Thing", [1, 2]) == {
            "endpoint": "Any.Thing",
            "request": [1, 2],
        }
        health = await client.call("app", "Debug.Health", None)
        assert health == {"status": "ok"}
