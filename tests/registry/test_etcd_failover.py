"""The etcd registry with several endpoints (`etcd://A,B`) against real etcd: requests and the
watch fail over when a member hangs, dies or refuses, and a watch that reconnects resumes at
the revision it had seen (re-reading instead when that revision was compacted or the store is
another one)."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import trio

from trimicro.registry import Node, ServiceRecord, Watcher, WatchEvent, open_registry

from .etcd_server import EtcdCluster, EtcdProcess, TcpProxy, _free_port


@pytest.fixture
def etcd() -> Iterator[EtcdProcess]:
    server = EtcdProcess()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def cluster() -> Iterator[EtcdCluster]:
    members = EtcdCluster(3)
    try:
        members.start()
        yield members
    finally:
        members.cleanup()


@pytest.fixture
async def proxy(etcd: EtcdProcess) -> AsyncIterator[TcpProxy]:
    forward = TcpProxy(etcd.port)
    async with trio.open_nursery() as nursery:
        await nursery.start(forward.run)
        yield forward
        nursery.cancel_scope.cancel()


def record(name: str, node: str) -> ServiceRecord:
    return ServiceRecord(name, "1", {}, nodes=[Node(node, f"{node}:1")])


def nodes(event: WatchEvent) -> tuple[str, list[str]]:
    return event.action, sorted(n.id for n in event.service.nodes)


async def next_event(watcher: Watcher, seconds: float) -> WatchEvent:
    with trio.fail_after(seconds):
        return await anext(aiter(watcher))


async def _member_id(member: EtcdProcess) -> str:
    async with httpx.AsyncClient(timeout=2) as http:
        reply = await http.post(f"http://{member.host}/v3/maintenance/status", json={})
        return str(reply.json()["header"]["member_id"])


async def _wait_for_a_leader_other_than(gone: str, asked: EtcdProcess) -> None:
    """If `gone` led the cluster, writes through `asked` time out until it knows the new
    leader (etcd's business, not the registry's: the test waits for it)."""
    async with httpx.AsyncClient(timeout=1) as http:
        with trio.fail_after(5):
            while True:
                try:
                    reply = await http.post(f"http://{asked.host}/v3/maintenance/status", json={})
                    if reply.json().get("leader") not in (None, "0", gone):
                        return
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.05)


@pytest.mark.parametrize("failure", ["SIGSTOP", "SIGKILL"])
async def test_the_watch_fails_over_when_its_member_hangs_or_dies(
    cluster: EtcdCluster, failure: str
) -> None:
    a, b, _ = cluster.members
    async with (
        open_registry(f"etcd://{a.host},{b.host}") as registry,
        open_registry(b.url) as through_b,
        registry.watch("svc") as watcher,
    ):
        await through_b.register(record("svc", "n1"), ttl=30)
        assert nodes(await next_event(watcher, 3)) == ("create", ["n1"])  # the watch is on A
        assert a.proc is not None
        gone = await _member_id(a)
        a.proc.send_signal(getattr(signal, failure))
        await _wait_for_a_leader_other_than(gone, b)
        started = trio.current_time()
        await through_b.register(record("svc", "n2"), ttl=30)
        assert nodes(await next_event(watcher, 8)) == ("update", ["n1", "n2"])
        took = trio.current_time() - started
        # Exactly once, in order: the next event is the next change, not a replay of n2.
        await through_b.deregister(record("svc", "n1"))
        assert nodes(await next_event(watcher, 3)) == ("update", ["n2"])
        # Requests moved off A too: this returns at once rather than after A's timeout.
        with trio.fail_after(2):
            [svc] = await registry.get_service("svc")
        assert [n.id for n in svc.nodes] == ["n2"]
    logging.getLogger(__name__).info("watch failover after %s took %.2f s", failure, took)


async def test_a_first_host_that_refuses_is_skipped_by_requests_and_the_watch(
    etcd: EtcdProcess,
) -> None:
    refusing = f"127.0.0.1:{_free_port()}"  # nothing listens there
    async with (
        open_registry(f"etcd://{refusing},{etcd.host}") as registry,
        open_registry(etcd.url) as direct,
        registry.watch() as watcher,
    ):
        with trio.fail_after(3):
            await registry.register(record("svc", "a"), ttl=30)
            [svc] = await registry.get_service("svc")
        assert [n.id for n in svc.nodes] == ["a"]
        assert [r.name for r in await registry.list_services()] == ["svc"]
        assert nodes(await next_event(watcher, 3)) == ("create", ["a"])
        await direct.register(record("other", "o"), ttl=30)  # through the working host only
        event = await next_event(watcher, 3)
        assert (event.service.name, *nodes(event)) == ("other", "create", ["o"])


async def _put_and_maybe_compact(etcd: EtcdProcess, compact: bool) -> None:
    async with open_registry(etcd.url) as direct:
        await direct.register(record("svc", "b"), ttl=30)
        await direct.register(record("svc", "c"), ttl=30)
        await direct.deregister(record("svc", "c"))
    if compact:
        async with httpx.AsyncClient() as http:
            reply = await http.post(f"http://{etcd.host}/v3/kv/range", json={"key": "AA=="})
            revision = reply.json()["header"]["revision"]
            compaction = await http.post(
                f"http://{etcd.host}/v3/kv/compaction", json={"revision": revision}
            )
            assert compaction.status_code == 200


@pytest.mark.parametrize("compact", [False, True], ids=["resumed", "compacted"])
async def test_a_reconnected_watch_resumes_or_rereads_after_compaction(
    etcd: EtcdProcess, proxy: TcpProxy, compact: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trimicro.registry")
    async with (
        open_registry(f"etcd://127.0.0.1:{proxy.port}") as registry,
        registry.watch("svc") as watcher,
    ):
        await registry.register(record("svc", "a"), ttl=30)
        assert nodes(await next_event(watcher, 3)) == ("create", ["a"])
        proxy.cut()
        await _put_and_maybe_compact(etcd, compact)  # missed while the watch is down
        await trio.sleep(0.3)
        proxy.restore()
        assert nodes(await next_event(watcher, 6)) == ("update", ["a", "b"])
        await registry.register(record("svc", "d"), ttl=30)
        assert nodes(await next_event(watcher, 3)) == ("update", ["a", "b", "d"])
    rereads = [r.getMessage() for r in caplog.records if "re-reading" in r.getMessage()]
    if compact:
        assert rereads and "compacted" in rereads[0]
    else:
        assert rereads == []


async def test_a_watch_that_reconnects_to_a_wiped_etcd_rereads(
    etcd: EtcdProcess, proxy: TcpProxy
) -> None:
    fresh = EtcdProcess()
    try:
        async with (
            open_registry(f"etcd://127.0.0.1:{proxy.port}") as registry,
            registry.watch("svc") as watcher,
        ):
            for _ in range(5):  # our revision ends well ahead of the fresh store's
                await registry.register(record("svc", "a"), ttl=30)
            assert nodes(await next_event(watcher, 3)) == ("create", ["a"])
            proxy.cut()
            fresh.start()
            async with open_registry(fresh.url) as direct:
                await direct.register(record("svc", "z"), ttl=30)
            proxy.restore(fresh.port)
            assert nodes(await next_event(watcher, 6)) == ("update", ["z"])
    finally:
        fresh.cleanup()
