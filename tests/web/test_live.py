"""The live feed: `/ws/registry` and the `RegistryFeed` behind it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection

from trimicro.gateway._proxy import open_websocket
from trimicro.registry import Node, ServiceRecord, WatchEvent, open_registry
from trimicro.web import RegistryFeed

from .conftest import make_greeter, running_dashboard


async def _next(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(5):
        message: dict[str, Any] = json.loads(await ws.get_message())
    return message


async def test_snapshot_then_create_and_delete_events() -> None:
    async with running_dashboard(make_greeter()) as site:
        async with open_websocket(site.dashboard.address, "/ws/registry") as ws:
            snapshot = await _next(ws)
            async with site.run(make_greeter("late", "0.1")):
                created = await _next(ws)
            deleted = await _next(ws)
    assert snapshot == {
        "type": "snapshot",
        "services": [{"name": "greeter", "versions": ["1.0.0"]}],
    }
    assert created == {"type": "event", "action": "create", "name": "late", "version": "0.1",
                       "nodes": 1}  # fmt: skip
    assert deleted["type"] == "event" and deleted["action"] == "delete"
    assert deleted["name"] == "late"


async def test_other_sites_and_other_paths_are_refused() -> None:
    async with running_dashboard() as site:
        address = site.dashboard.address
        evil = [(b"origin", b"http://evil.example")]
        with pytest.raises(ConnectionRejected) as cross:
            async with open_websocket(address, "/ws/registry", headers=evil):
                pass
        with pytest.raises(ConnectionRejected) as elsewhere:
            async with open_websocket(address, "/ws/nothing"):
                pass
        own = [(b"origin", site.url.encode())]
        async with open_websocket(address, "/ws/registry", headers=own) as ws:
            assert (await _next(ws))["type"] == "snapshot"
            # Not closing right after the first message: hypercorn (0.18, as the gateway
            # serves it) then misses the client's close frame until its head deadline.
            async with site.run(make_greeter()):
                assert (await _next(ws))["action"] == "create"
    assert cross.value.status_code == 403
    assert elsewhere.value.status_code == 404


async def test_a_page_that_falls_behind_is_cut_off_and_others_are_not() -> None:
    async with open_registry("memory://web-feed") as registry:
        feed = RegistryFeed(registry, queue_size=2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed.run)
            await feed.watching.wait()
            with feed.subscribe() as slow, feed.subscribe() as fast:
                for i in range(3):
                    await registry.register(ServiceRecord(f"s{i}", nodes=[Node("n", "a:1")]))
                    assert (await fast.receive()).service.name == f"s{i}"
                got = [event.service.name async for event in slow]  # ends: it was cut off
                assert feed.subscribers == 1
            nursery.cancel_scope.cancel()
    assert got == ["s0", "s1"]


async def test_the_socket_closes_when_the_feed_cuts_it_off() -> None:
    async with running_dashboard() as site:
        site.dashboard.app.feed.queue_size = 1  # new subscribers get a queue of one
        async with open_websocket(site.dashboard.address, "/ws/registry") as ws:
            await _next(ws)
            # Three changes before the page's task runs: one may go straight to its waiting
            # receive, one fills the queue, the third overflows it.
            event = WatchEvent("create", ServiceRecord("a", nodes=[Node("n", "a:1")]))
            for _ in range(3):
                site.dashboard.app.feed.publish(event)
            received = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    received.append(await _next(ws))
    assert 1 <= len(received) <= 2
    assert closed.value.reason is not None
    assert closed.value.reason.code == 1012
