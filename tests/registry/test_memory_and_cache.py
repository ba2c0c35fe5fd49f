"""The memory registry's semantics, the cache in front of registries, and plugin lookup."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trimicro._plugins import PluginError, load_plugin
from trimicro.registry import (
    Node,
    RegistryError,
    ServiceCache,
    ServiceRecord,
    open_registry,
    open_service_cache,
)


def record(name: str, node: str, version: str = "1") -> ServiceRecord:
    return ServiceRecord(name, version, nodes=[Node(node, f"{node}:1")])


async def test_register_merges_nodes_and_deregister_removes_them() -> None:
    async with open_registry("memory://merge") as registry:
        await registry.register(record("svc", "a"))
        await registry.register(record("svc", "b"))
        await registry.register(record("svc", "c", version="2"))
        versions = {
            r.version: sorted(n.id for n in r.nodes) for r in await registry.get_service("svc")
        }
        assert versions == {"1": ["a", "b"], "2": ["c"]}
        await registry.deregister(record("svc", "a"))
        await registry.deregister(record("svc", "c", version="2"))
        assert [[n.id for n in r.nodes] for r in await registry.get_service("svc")] == [["b"]]


async def test_watch_sees_create_update_delete_in_order() -> None:
    async with open_registry("memory://watch") as registry:
        async with registry.watch("svc") as watcher:
            await registry.register(record("svc", "a"))
            await registry.register(record("other", "x"))  # filtered out
            await registry.register(record("svc", "b"))
            await registry.deregister(record("svc", "a"))
            await registry.deregister(record("svc", "b"))
            events = []
            async for event in watcher:
                events.append((event.action, sorted(n.id for n in event.service.nodes)))
                if len(events) == 4:
                    break
    assert events == [("create", ["a"]), ("update", ["a", "b"]), ("update", ["b"]), ("delete", [])]


class FlakyRegistry:
    """A registry double whose lookups can be made to fail."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.down = False
        self.lookups = 0

    async def get_service(self, name: str) -> list[ServiceRecord]:
        self.lookups += 1
        if self.down:
            raise RegistryError("registry unreachable")
        return await self.inner.get_service(name)  # type: ignore[attr-defined,no-any-return]


async def test_cache_serves_within_ttl_and_stale_when_registry_is_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_registry("memory://cache-ttl") as registry:
        await registry.register(record("svc", "a"))
        flaky = FlakyRegistry(registry)
        cache = ServiceCache(flaky, ttl=60)  # type: ignore[arg-type]
        assert len(await cache.get_service("svc")) == 1
        await trio.sleep(59)
        await cache.get_service("svc")
        assert flaky.lookups == 1  # served from the cache
        await trio.sleep(2)
        flaky.down = True
        stale = await cache.get_service("svc")
        assert [n.id for r in stale for n in r.nodes] == ["a"]  # stale, never empty
        assert flaky.lookups == 2
        with pytest.raises(RegistryError):
            await cache.get_service("never-seen")


async def test_cache_follows_watch_events(autojump_clock: trio.testing.MockClock) -> None:
    async with open_registry("memory://cache-watch") as registry:
        async with open_service_cache(registry, ttl=3600) as cache:
            await registry.register(record("svc", "a"))
            assert [n.id for r in await cache.get_service("svc") for n in r.nodes] == ["a"]
            await registry.register(record("svc", "b"))
            await registry.deregister(record("svc", "a"))
            await trio.testing.wait_all_tasks_blocked()
            assert [n.id for r in await cache.get_service("svc") for n in r.nodes] == ["b"]


def test_plugins_are_found_by_scheme_with_clear_errors() -> None:
    assert callable(load_plugin("trimicro.registries", "memory://x"))
    assert callable(load_plugin("trimicro.transports", "tcp://"))
    with pytest.raises(PluginError, match=r"unknown scheme 'bogus'.*known: .*memory://"):
        load_plugin("trimicro.registries", "bogus://x")
    with pytest.raises(PluginError, match="is not a URL"):
        load_plugin("trimicro.registries", "memory")
