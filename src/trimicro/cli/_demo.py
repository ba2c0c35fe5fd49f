"""`trimicro demo`: a scripted tour of a local trimicro system, end to end.

It starts real services on loopback QUIC (sharing an in-process registry), then walks through
discovery, a call, an error, a stream, a deadline that cancels a remote handler, a publish to a
queue group, a node leaving mid-traffic, a node killed with SIGKILL mid-traffic (a real
process), the API gateway, and a second site joined by two network nodes, with
calls crossing the network through the proxy, printing what happens. `--serve` keeps
everything running afterwards for you to explore.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import attrs
import click
import httpx
import trio
from rich.console import Console
from rich.markup import escape

from .. import errors
from .._service import RunningService, Service, open_client
from ..gateway import Gateway, open_gateway
from ..network import NetworkNode, open_network_node
from ..registry import open_registry
from ..rpc import Client, Stream, current_call
from ..web import open_dashboard

__all__ = ["demo"]


@attrs.frozen
class Hello:
    name: str


@attrs.frozen
class Greeting:
    msg: str


@attrs.frozen
class Count:
    to: int


@attrs.frozen
class Number:
    value: int


@attrs.frozen
class Work:
    seconds: float


@attrs.define
class _Observed:
    """What the demo's handlers report back, so the tour can show the far side too."""

    cancelled: trio.Event = attrs.field(factory=trio.Event)
    budget_seen: float = 0.0
    audited: dict[str, int] = attrs.field(factory=dict)
    logged: int = 0


def _build_services(observed: _Observed, registry: str) -> list[Service]:
    greeter = Service("greeter", version="1.0.0", registry=registry)
    counter = Service("counter", registry=registry)
    worker = Service("worker", registry=registry)

    @greeter.endpoint("Say.Hello")
    async def hello(req: Hello) -> Greeting:
        if not req.name:
            raise errors.bad_request("name must not be empty")
        return Greeting(f"Hello {req.name}")

    @counter.stream_endpoint("Count.Up")
    async def count_up(req: Count, stream: Stream[None]) -> None:
        for i in range(req.to):
            await stream.send(Number(i))

    @worker.endpoint("Work.Slow")
    async def slow(req: Work) -> dict[str, str]:
        observed.budget_seen = current_call().remaining()
        try:
            await trio.sleep(req.seconds)
        except trio.Cancelled:
            observed.cancelled.set()
            raise
        return {"status": "done"}

    return [greeter, counter, worker, *_audit_services(observed, registry)]


def _audit_services(observed: _Observed, registry: str) -> list[Service]:
    """Two audit nodes sharing `events` in queue group `audit`, and a logger seeing all."""

    def auditor(node: str) -> Service:
        service = Service("audit", registry=registry)

        @service.subscribe("events", queue="audit")
        async def record(event: dict[str, int]) -> None:
            observed.audited[node] = observed.audited.get(node, 0) + 1

        return service

    logger = Service("logger", registry=registry)

    @logger.subscribe("events")
    async def log_all(event: dict[str, int]) -> None:
        observed.logged += 1

    return [auditor("audit-1"), auditor("audit-2"), logger]


def _replica(registry: str) -> Service:
    replica = Service("greeter", version="1.0.0", registry=registry)

    @replica.endpoint("Say.Hello", idempotent=True)
    async def hello(req: Hello) -> Greeting:
        return Greeting(f"Hello {req.name} (from the replica)")

    return replica


@asynccontextmanager
async def _running(services: list[Service]) -> AsyncIterator[list[RunningService]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(s.run()) for s in services]


_console = Console(highlight=False, soft_wrap=True)


def _step(title: str) -> None:
    _console.print(f"\n[bold cyan]==[/] [bold]{escape(title)}[/]")


async def _tour(client: Client, observed: _Observed) -> None:
    _step("a call: greeter Say.Hello {'name': 'Ann'}")
    reply = await client.call("greeter", "Say.Hello", Hello("Ann"), response=Greeting)
    click.echo(f"   reply: {reply.msg!r}")

    _step("an error travels back typed: greeter Say.Hello {'name': ''}")
    try:
        await client.call("greeter", "Say.Hello", Hello(""))
    except errors.Error as exc:
        click.echo(f"   error: {exc.to_dict()}")

    _step("a stream: counter Count.Up {'to': 5}")
    async with client.stream("counter", "Count.Up", Count(5), response=Number) as numbers:
        values = [n.value async for n in numbers]
    click.echo(f"   replies: {values}")

    _step("a deadline travels with the call: worker Work.Slow(10 s) under a 0.2 s budget")
    started = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        await client.call("worker", "Work.Slow", Work(10.0))
    with trio.fail_after(2):
        await observed.cancelled.wait()
    waited = trio.current_time() - started
    click.echo(
        f"   caller gave up: {scope.cancelled_caught}; handler saw a budget of "
        f"{observed.budget_seen:.3f} s and was cancelled after {waited:.3f} s"
    )

    _step("publish 20 events: queue group 'audit' shares them, the logger sees all")
    for seq in range(20):
        await client.publish("events", {"seq": seq})
    await trio.sleep(0.2)
    click.echo(
        f"   audit nodes: {dict(sorted(observed.audited.items()))}; logger: {observed.logged}"
    )


async def _node_stops_mid_traffic(client: Client, registry: str) -> None:
    _step("a second greeter node joins, then shuts down in the middle of 200 calls")
    stop, stopped = trio.Event(), trio.Event()

    async def run_replica(task_status: trio.TaskStatus[None]) -> None:
        async with _replica(registry).run():
            task_status.started()
            await stop.wait()
        stopped.set()

    failures = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(run_replica)
        for i in range(200):
            if i == 100:
                stop.set()
            try:
                await client.call("greeter", "Say.Hello", Hello(str(i)))
            except errors.Error:
                failures += 1
    click.echo(f"   replica stopped cleanly: {stopped.is_set()}; failed calls: {failures} of 200")


def _weather(registry: str, cancelled: dict[str, float]) -> Service:
    weather = Service("weather", registry=registry)

    @weather.endpoint("Forecast.Today")
    async def today(req: None) -> dict[str, str]:
        return {"site": "b", "forecast": "sunny"}

    @weather.endpoint("Forecast.Slow")
    async def slow(req: Work) -> None:
        started = trio.current_time()
        try:
            await trio.sleep(req.seconds)
        finally:
            cancelled["after"] = trio.current_time() - started

    return weather


async def _node_killed() -> None:
    _step("a node is killed (SIGKILL, a real process) in the middle of 200 calls")
    registry = f"mdns://?domain=demo{os.getpid()}k"
    survivor = Service("echo", registry=registry)

    @survivor.endpoint("Echo.Where", idempotent=True)
    async def where(req: None) -> str:
        return "the survivor"

    answers: dict[str, int] = {}
    failures = 0
    command = [sys.executable, "-m", "trimicro.cli._demo_node", registry]
    async with survivor.run(), open_client(registry=registry) as client:
        proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
        try:
            if not await _started(proc, registry):
                click.echo("   skipped: the node to kill did not start here")
                return
            for i in range(200):
                if i == 100:
                    proc.kill()
                try:
                    answer = await client.call("echo", "Echo.Where", None)
                    answers[answer] = answers.get(answer, 0) + 1
                except errors.Error:
                    failures += 1
        finally:
            proc.kill()
            await proc.wait()
    click.echo(f"   answers: {answers}; failed calls: {failures} of 200 (the kill came at 100)")


async def _started(proc: trio.Process, registry: str) -> bool:
    """The killable node said "ready" and both nodes are in the registry (bounded)."""
    assert proc.stdout is not None
    with trio.move_on_after(15):
        output = b""
        while b"ready" not in output:
            chunk = await proc.stdout.receive_some()
            if not chunk:
                return False
            output += chunk
        async with open_registry(registry) as registry_client:
            while True:
                records = await registry_client.get_service("echo")
                if sum(len(record.nodes) for record in records) >= 2:
                    return True
                await trio.sleep(0.05)
    return False


async def _through_the_gateway(gateway: Gateway) -> None:
    _step(f"the API gateway at {gateway.url}: HTTP in, RPC out")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        by_path = await http.post("/greeter/say/hello", json={"name": "Bo"})
        click.echo(f"   POST /greeter/say/hello → {by_path.status_code} {by_path.json()}")
        error = await http.post("/greeter/say/hello", json={"name": ""})
        click.echo(f"   an error keeps its status: {error.status_code} {error.json()['detail']!r}")


@asynccontextmanager
async def _second_site(registry_a: str, cancelled: dict[str, float]) -> AsyncIterator[NetworkNode]:
    """Site b with its own registry and a weather service, joined to site a by two nodes."""
    registry_b = f"{registry_a}-site-b"
    async with (
        _weather(registry_b, cancelled).run(),
        open_network_node(
            registry=registry_a, address="127.0.0.1:0", rpc_address="127.0.0.1:0", id="node-a"
        ) as a,
        open_network_node(
            registry=registry_b,
            address="127.0.0.1:0",
            rpc_address="127.0.0.1:0",
            peers=[a.info.address],
            id="node-b",
        ),
    ):
        yield a


async def _across_the_network(a: NetworkNode, registry_a: str, cancelled: dict[str, float]) -> None:
    _step("a second site joins: two network nodes link sites a and b over QUIC")
    with trio.fail_after(20):
        while not a.routes(service="weather"):  # noqa: ASYNC110 - the demo shows waiting
            await trio.sleep(0.1)
    (route,) = a.routes(service="weather")
    click.echo(
        f"   node-a learned weather via {route.gateway} (metric {route.metric}) "
        f"after the link came up"
    )
    async with open_client(registry=registry_a, proxy="trimicro.network") as client:
        _step("a call in site a reaches weather in site b through TRIMICRO_PROXY")
        reply = await client.call("weather", "Forecast.Today", None)
        click.echo(f"   reply: {reply}")
        _step("a deadline crosses the network: Forecast.Slow(10 s) under a 0.5 s budget")
        with trio.move_on_after(0.5) as scope:
            await client.call("weather", "Forecast.Slow", Work(10.0))
    with trio.fail_after(5):
        while "after" not in cancelled:  # noqa: ASYNC110 - the far side reports
            await trio.sleep(0.01)
    click.echo(
        f"   caller gave up: {scope.cancelled_caught}; "
        f"the handler in site b was cancelled after {cancelled['after']:.2f} s"
    )


async def _demo(serve: bool) -> None:
    observed = _Observed()
    registry = f"memory://demo-{os.getpid()}"
    services = _build_services(observed, registry)
    cancelled: dict[str, float] = {}
    async with (
        _running(services) as running,
        open_client(registry=registry) as client,
        open_registry(registry) as discovery,
        open_gateway(address="127.0.0.1:0", registry=registry, namespace="") as gateway,
    ):
        _step("services started (real QUIC listeners on loopback)")
        for r in running:
            click.echo(f"   {r.service.name:<8} {r.address}  node {r.node.id}")
        _step("discovery")
        for r in running:
            records = await discovery.get_service(r.service.name)
            click.echo(f"   {r.service.name}: {[n.address for rec in records for n in rec.nodes]}")
        await _tour(client, observed)
        await _node_stops_mid_traffic(client, registry)
        await _node_killed()
        await _through_the_gateway(gateway)
        async with (
            _second_site(registry, cancelled) as node_a,
            open_dashboard(
                address="127.0.0.1:0", registry=registry, network_node=node_a.rpc_address
            ) as dashboard,
        ):
            await _across_the_network(node_a, registry, cancelled)
            _step(f"the web dashboard: {dashboard.url} (services, calls, the network)")
            if serve:
                click.echo(f"\nserving; open {dashboard.url} — press Ctrl-C to stop")
                await trio.sleep_forever()
    click.secho("\ndemo finished: every service deregistered and drained", bold=True)


@click.command()
@click.option("--serve", is_flag=True, help="Keep the services running after the tour.")
def demo(serve: bool) -> None:
    """Run a local system of services and walk through what trimicro does."""
    try:
        trio.run(_demo, serve)
    except KeyboardInterrupt:
        pass
