"""`service.handle(obj)`: each public async method is an endpoint `Class.Method` (a method with
a stream parameter streams), and `current_call()` tells a handler its peer and deadline."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import trimicro
from trimicro.registry import open_registry
from trimicro.rpc import Stream
from trimicro.testing import open_cluster


class Greeter:
    def __init__(self) -> None:
        self.greeted: list[str] = []

    async def say_hello(self, req: dict[str, str]) -> dict[str, str]:
        self.greeted.append(req["name"])
        return {"msg": f"Hello {req['name']}"}

    async def shout(self, req: None, stream: Stream[str]) -> None:
        async for word in stream:
            await stream.send(word.upper())

    async def whoami(self, req: None) -> dict[str, float | str]:
        call = trimicro.current_call()
        return {"peer": call.peer, "left": call.remaining(), "deadline": call.deadline}

    async def _private(self, req: None) -> None:
        raise AssertionError("never an endpoint")

    def sync_helper(self) -> None:
        raise AssertionError("never an endpoint")


async def test_public_async_methods_become_endpoints(
    autojump_clock: trio.testing.MockClock,
) -> None:
    greeter = Greeter()
    service = trimicro.Service("greeter")
    service.handle(greeter)
    other = trimicro.Service("named")
    other.handle(Greeter(), name="Say")
    async with open_cluster(service, other) as cluster:
        reply = await cluster.client.call("greeter", "Greeter.SayHello", {"name": "Ann"})
        assert reply == {"msg": "Hello Ann"} and greeter.greeted == ["Ann"]
        async with cluster.client.stream("greeter", "Greeter.Shout") as stream:
            await stream.send("hey")
            assert await stream.receive() == "HEY"
        assert await cluster.client.call("named", "Say.SayHello", {"name": "Bo"}) == {
            "msg": "Hello Bo"
        }
        async with open_registry(cluster.registry) as registry:
            (record,) = await registry.get_service("greeter")
        endpoints = {e.name: e.metadata for e in record.endpoints}
        assert {"Greeter.SayHello", "Greeter.Shout", "Greeter.Whoami"} <= set(endpoints)
        assert endpoints["Greeter.Shout"].get("stream") == "true"
        assert "stream" not in endpoints["Greeter.SayHello"]
        assert not any("Private" in name or "SyncHelper" in name for name in endpoints)
        with pytest.raises(trimicro.errors.Error) as info:
            await cluster.client.call("greeter", "Greeter._private")
        assert info.value.code == 404


async def test_current_call_carries_the_peer_and_the_callers_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = trimicro.Service("greeter")
    service.handle(Greeter())
    async with open_cluster(service) as cluster:
        with trio.move_on_after(5):
            start = trio.current_time()
            seen = await cluster.client.call("greeter", "Greeter.Whoami")
        assert seen["peer"]  # the caller's address on this transport
        assert seen["left"] == pytest.approx(5.0)
        assert seen["deadline"] == pytest.approx(start + 5.0)
        unbounded = await cluster.client.call("greeter", "Greeter.Whoami")
        assert unbounded["deadline"] == math.inf and unbounded["left"] == math.inf
