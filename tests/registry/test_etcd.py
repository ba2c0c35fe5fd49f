"""The etcd registry against a real etcd: registration with leases, TTL expiry, watches,
prefixes, a paused etcd, a killed etcd behind the cache, and a whole service over it."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest
import trio

import trimicro
from trimicro.registry import (
    Node,
    RegistryError,
    ServiceCache,
    ServiceRecord,
    open_registry,
)

from .etcd_server import EtcdProcess


@pytest.fixture
def etcd() -> Iterator[EtcdProcess]:
    server = EtcdProcess()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def record(name: str, node: str, version: str = "1") -> ServiceRecord:
    return ServiceRecord(name, version, {"team": "core"}, nodes=[Node(node, f"{node}:1")])


async def test_register_get_list_deregister(etcd: EtcdProcess) -> None:
    async with open_registry(etcd.url) as registry:
        await registry.register(record("svc", "a"), ttl=30)
        await registry.register(record("svc", "b"), ttl=30)
        await registry.register(record("other", "c"), ttl=30)
        [svc] = await registry.get_service("svc")
        assert sorted(n.id for n in svc.nodes) == ["a", "b"] and svc.metadata == {"team": "core"}
        assert sorted(r.name for r in await registry.list_services()) == ["other", "svc"]
        await registry.deregister(record("svc", "a"))
        assert [n.id for r in await registry.get_service("svc") for n in r.nodes] == ["b"]


async def test_keys_are_readable_json_for_etcdctl(etcd: EtcdProcess) -> None:
    async with open_registry(etcd.url) as registry:
        await registry.register(record("greeter", "g-1"), ttl=30)
    command = ["etcdctl", f"--endpoints=127.0.0.1:{etcd.port}", "get", "--prefix", "/trimicro"]
    result = await trio.run_process(
        command, capture_stdout=True, env={**os.environ, "ETCDCTL_API": "3"}
    )
    out = result.stdout.decode().splitlines()  # fmt: skip
    assert out[0] == "/trimicro/services/greeter/g-1"
    assert json.loads(out[1])["node"]["address"] == "g-1:1"


async def test_unrefreshed_node_expires_with_its_lease(etcd: EtcdProcess) -> None:
    async with open_registry(etcd.url) as registry:
        await registry.register(record("short", "s-1"), ttl=1)
        assert await registry.get_service("short")
        with trio.fail_after(5):
            while await registry.get_service("short"):
                await trio.sleep(0.2)


async def test_watch_sees_create_update_delete(etcd: EtcdProcess) -> None:
    # Events are differences between re-reads of the prefix, so changes made faster than the
    # watch re-reads fold into one event: each step waits for its event before the next.
    steps = [
        ("register", "a", ("create", ["a"])),
        ("register", "b", ("update", ["a", "b"])),
        ("deregister", "a", ("update", ["b"])),
        ("deregister", "b", ("delete", [])),
    ]
    async with open_registry(etcd.url) as registry, registry.watch("svc") as watcher:
        await trio.sleep(0.3)  # the watch stream is established
        for op, node, expected in steps:
            if op == "register":
                await registry.register(record("svc", node), ttl=30)
            else:
                await registry.deregister(record("svc", node))
            with trio.fail_after(5):
                event = await watcher.__anext__()
            assert (event.action, sorted(n.id for n in event.service.nodes)) == expected


async def test_prefixes_keep_sites_apart(etcd: EtcdProcess) -> None:
    async with (
        open_registry(f"{etcd.url}?prefix=/site-a") as a,
        open_registry(f"{etcd.url}?prefix=/site-b") as b,
    ):
        await a.register(record("svc", "a1"), ttl=30)
        assert await b.get_service("svc") == []
        assert len(await a.get_service("svc")) == 1


async def test_paused_etcd_keeps_registrations_and_killed_etcd_leaves_the_cache(
    etcd: EtcdProcess,
) -> None:
    assert etcd.proc is not None
    async with open_registry(etcd.url) as registry, registry.watch("late") as watcher:
        await registry.register(record("svc", "a"), ttl=5)
        cache = ServiceCache(registry, ttl=0)  # always asks, falls back when it cannot
        assert len(await cache.get_service("svc")) == 1
        etcd.proc.send_signal(signal.SIGSTOP)
        await trio.sleep(2)
        etcd.proc.send_signal(signal.SIGCONT)
        await registry.register(record("svc", "a"), ttl=5)  # the refresh after the pause
        assert [n.id for r in await registry.get_service("svc") for n in r.nodes] == ["a"]
        await registry.register(record("late", "l-1"), ttl=5)
        with trio.fail_after(5):  # the watch resumed
            event = await watcher.__anext__()
        assert (event.action, event.service.name) == ("create", "late")
        etcd.stop()
        with pytest.raises(RegistryError, match="etcd unreachable"):
            await registry.get_service("svc")
        stale = await cache.get_service("svc")
        assert [n.id for r in stale for n in r.nodes] == ["a"]


async def test_a_service_over_etcd(etcd: EtcdProcess) -> None:
    service = trimicro.Service("greeter", registry=etcd.url, transport="tcp://",
                               broker="memory://etcd")  # fmt: skip

    @service.endpoint("Say.Hello")
    async def hello(req: dict[str, str]) -> dict[str, str]:
        return {"msg": f"Hello {req['name']}"}

    async with (
        service.run(),
        trimicro.open_client(
            registry=etcd.url, transport="tcp://", broker="memory://etcd"
        ) as client,
    ):
        assert await client.call("greeter", "Say.Hello", {"name": "Ann"}) == {"msg": "Hello Ann"}
