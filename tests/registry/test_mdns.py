"""The `mdns://` registry on real sockets: one process, two processes, sites, TTLs, goodbyes.

Every test uses a site (`?domain=`) of its own, so tests running beside other trimicro
processes on this machine never see their services.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest
import trio

from trimicro.registry import Endpoint, Node, RegistryError, ServiceRecord, open_registry
from trimicro.registry._mdns import (
    DEFAULT_TIMEOUT,
    WATCH_QUEUE_SIZE,
    MdnsRegistry,
    _Watcher,
    open_mdns_registry,
    parse_mdns_url,
)
from trimicro.registry._mdns_wire import subtype_name
from trimicro.registry._model import WatchEvent

CHILD = textwrap.dedent(
    """
    import signal, sys, trio
    from trimicro.registry import Endpoint, Node, ServiceRecord
    from trimicro.registry._mdns import open_mdns_registry

    async def main(domain, ttl):
        node = Node("child-1", "127.0.0.1:9999", {"transport": "tcp", "protocol": "1"})
        record = ServiceRecord("child.svc", "1.0", endpoints=[Endpoint("A.B")], nodes=[node])
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with open_mdns_registry(f"mdns://?domain={domain}") as registry:
                await registry.register(record, ttl=ttl)
                print("ready", flush=True)
                async for _ in signals:
                    break

    trio.run(main, sys.argv[1], float(sys.argv[2]))
    """
)


def site() -> str:
    return "t" + uuid.uuid4().hex[:12]


def greeter(node_id: str = "g-1", **metadata: str) -> ServiceRecord:
    node = Node(node_id, "127.0.0.1:9000", {"transport": "tcp", "protocol": "1", **metadata})
    return ServiceRecord("greeter.v1", "1.0.0", endpoints=[Endpoint("Say.Hello")], nodes=[node])


async def next_event(watcher: object, within: float = 1.0) -> WatchEvent:
    with trio.fail_after(within):
        async for event in watcher:  # type: ignore[attr-defined]
            return event  # type: ignore[no-any-return]
    raise AssertionError("watcher ended")


@asynccontextmanager
async def child(tmp_path: Path, domain: str, ttl: float) -> AsyncIterator[trio.Process]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    command = [sys.executable, str(script), domain, str(ttl)]
    async with trio.open_nursery() as nursery:
        run = partial(trio.run_process, command, stdout=subprocess.PIPE, check=False)
        process: trio.Process = await nursery.start(run)  # killed if the test fails
        assert process.stdout is not None
        output = b""
        with trio.fail_after(15):
            while not output.endswith(b"\n"):  # a pipe may hand the line over in pieces
                chunk = await process.stdout.receive_some(100)
                assert chunk, f"child exited early: {output!r}"
                output += chunk
        assert output == b"ready\n"
        yield process


# --- URL -------------------------------------------------------------------------------------


def test_url_options() -> None:
    assert parse_mdns_url("mdns://").domain == "trimicro"
    assert parse_mdns_url("mdns://").timeout == DEFAULT_TIMEOUT
    options = parse_mdns_url("mdns:///?domain=site-a&timeout=0.5&interfaces=lo,127.0.0.1")
    assert (options.domain, options.timeout) == ("site-a", 0.5)
    assert options.interfaces == ("127.0.0.1", "127.0.0.1")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("memory://x", "expected mdns://"),
        ("mdns://host", "expected mdns://"),
        ("mdns://?domain=Site_A", "domain 'Site_A'"),
        ("mdns://?domain=", "domain ''"),
        ("mdns://?timeout=soon", "timeout 'soon' is not a number"),
        ("mdns://?timeout=0", "must be above 0"),
        ("mdns://?timeout=nan", "must be above 0"),
        ("mdns://?ttl=5", "unknown option 'ttl'"),
        ("mdns://?domain=a&domain=b", "repeated"),
        ("mdns://?domain", "bad query field"),
        ("mdns://?interfaces=no-such-if0", "interface 'no-such-if0'"),
    ],
)
def test_bad_urls_name_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse_mdns_url(url)


# --- one process, separate sockets ------------------------------------------------------------


async def test_two_registries_see_each_other() -> None:
    url = f"mdns://?domain={site()}"
    async with open_mdns_registry(url) as a, open_mdns_registry(url) as b:
        async with b.watch("greeter.v1") as watcher:
            await a.register(greeter(), ttl=30)
            assert (await next_event(watcher)).action == "create"
            assert await b.get_service("greeter.v1") == [greeter()]
            assert [r.name for r in await b.list_services()] == ["greeter.v1"]
            await a.register(greeter(team="core"), ttl=30)
            assert (await next_event(watcher)).service == greeter(team="core")
            await a.deregister(greeter())
            assert (await next_event(watcher)).action == "delete"
            assert await b.get_service("greeter.v1") == []


async def test_a_registry_finds_what_was_registered_before_it_opened() -> None:
    url = f"mdns://?domain={site()}"
    async with open_mdns_registry(url) as a:
        await a.register(greeter(), ttl=30)
        async with open_mdns_registry(url) as late:
            assert await late.get_service("greeter.v1") == [greeter()]


async def test_concurrent_lookups_share_one_query_window() -> None:
    url = f"mdns://?domain={site()}"
    async with open_mdns_registry(url) as a, open_mdns_registry(url) as b:
        await a.register(greeter(), ttl=30)
        results: list[list[ServiceRecord]] = []

        async def look() -> None:
            results.append(await b.get_service("greeter.v1"))

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(look)
        assert trio.current_time() - start < 1.5 * DEFAULT_TIMEOUT
        assert results == [[greeter()]] * 20


async def test_sites_are_isolated() -> None:
    one, two = site(), site()
    async with (
        open_mdns_registry(f"mdns://?domain={one}") as a,
        open_mdns_registry(f"mdns://?domain={two}") as b,
        open_mdns_registry(f"mdns://?domain={one}") as a2,
    ):
        await a.register(greeter("a-node"), ttl=30)
        await b.register(greeter("b-node"), ttl=30)
        (seen_by_a2,) = await a2.get_service("greeter.v1")
        assert [n.id for n in seen_by_a2.nodes] == ["a-node"]
        assert [n.id for r in await b.list_services() for n in r.nodes] == ["b-node"]


async def test_an_unrefreshed_registration_expires() -> None:
    url = f"mdns://?domain={site()}"
    async with open_mdns_registry(url) as a, open_mdns_registry(url) as b:
        async with b.watch() as watcher:
            await a.register(greeter(), ttl=1)
            assert (await next_event(watcher)).action == "create"
            start = trio.current_time()
            assert (await next_event(watcher, within=2)).action == "delete"
            assert 0.7 < trio.current_time() - start < 1.8  # by the TTL, not by a goodbye
            assert await b.get_service("greeter.v1") == []


async def test_closing_sends_goodbyes() -> None:
    url = f"mdns://?domain={site()}"
    async with open_mdns_registry(url) as b, b.watch() as watcher:
        async with open_mdns_registry(url) as a:
            await a.register(greeter(), ttl=60)
            assert (await next_event(watcher)).action == "create"
        assert (await next_event(watcher, within=0.5)).action == "delete"


async def test_a_closed_registry_refuses_calls() -> None:
    async with open_mdns_registry(f"mdns://?domain={site()}") as registry:
        pass
    with pytest.raises(RegistryError, match="closed"):
        await registry.register(greeter())
    with pytest.raises(RegistryError, match="closed"):
        await registry.get_service("greeter.v1")


async def test_open_registry_picks_mdns_by_url() -> None:
    async with open_registry(f"mdns://?domain={site()}&interfaces=lo") as registry:
        assert isinstance(registry, MdnsRegistry)
        assert registry._sock.interfaces == ("127.0.0.1",)
        await registry.register(greeter(), ttl=5)
        assert await registry.get_service("greeter.v1") == [greeter()]


async def test_legacy_unicast_queries_are_answered() -> None:
    """What `dig @224.0.0.251 -p 5353` does: ask from an ephemeral port, expect unicast."""
    domain = site()
    async with open_mdns_registry(f"mdns://?domain={domain}") as registry:
        await registry.register(greeter(), ttl=30)
        question = dns.message.make_query(subtype_name(domain), dns.rdatatype.PTR)
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as asker:
            loopback = socket.inet_aton("127.0.0.1")
            asker.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, loopback)
            await asker.sendto(question.to_wire(), ("224.0.0.251", 5353))
            with trio.fail_after(1):
                data, _ = await asker.recvfrom(9000)
        answer = dns.message.from_wire(data)
        assert answer.id == question.id
        assert any(rr.rdtype == dns.rdatatype.TXT for rr in answer.answer)


async def test_a_slow_watcher_fails_clearly() -> None:
    watcher = _Watcher(lambda event: True)
    for _ in range(WATCH_QUEUE_SIZE + 1):
        watcher.offer(WatchEvent("update", greeter()))
    with pytest.raises(RegistryError, match="fell behind"):
        async for _ in watcher:
            pass


# --- two processes ---------------------------------------------------------------------------


async def test_another_process_is_found_and_its_goodbye_heard(tmp_path: Path) -> None:
    domain = site()
    async with open_mdns_registry(f"mdns://?domain={domain}") as registry:
        async with registry.watch("child.svc") as watcher, child(tmp_path, domain, 30) as proc:
            start = trio.current_time()
            (record,) = await registry.get_service("child.svc")
            assert trio.current_time() - start < 1.0
            assert record.nodes[0].address == "127.0.0.1:9999"
            assert record.endpoints == (Endpoint("A.B"),)
            assert (await next_event(watcher)).action == "create"
            proc.send_signal(signal.SIGTERM)
            assert (await next_event(watcher)).action == "delete"
            assert await proc.wait() == 0
        assert await registry.get_service("child.svc") == []


async def test_a_killed_process_disappears_when_its_ttl_ends(tmp_path: Path) -> None:
    domain = site()
    async with open_mdns_registry(f"mdns://?domain={domain}") as registry:
        async with registry.watch("child.svc") as watcher, child(tmp_path, domain, 1) as proc:
            assert (await next_event(watcher)).action == "create"
            proc.kill()  # no goodbye
            assert await proc.wait() == -signal.SIGKILL
            assert (await next_event(watcher, within=1.5)).action == "delete"
