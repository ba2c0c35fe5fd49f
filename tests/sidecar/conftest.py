"""Sidecar fixtures: the stand-in app (examples/sidecar/app.py) as a real process, and the
sidecar in-process on an in-memory cluster, its HTTP server on a real loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

import trimicro
from trimicro.sidecar import Sidecar, open_sidecar, parse_endpoint
from trimicro.testing import Cluster, open_cluster

ROOT = Path(__file__).resolve().parents[2]

#: Health-check interval of the tests' sidecars (seconds): short, so outages show fast.
INTERVAL = 0.2


@attrs.define
class AppProcess:
    """The stand-in HTTP app, restartable on the same port."""

    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    address: str = ""

    def start(self) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "examples.sidecar.app", "--port", str(self.port)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the app did not start: {line!r}")
        self.address = line.split()[2]
        self.port = int(self.address.rpartition(":")[2])
        return self.address

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    @property
    def health_url(self) -> str:
        return f"http://{self.address}/health"


@pytest.fixture
def app() -> Iterator[AppProcess]:
    process = AppProcess()
    process.start()
    yield process
    process.stop()


def make_greeter() -> trimicro.Service:
    """A Python service beside the app, for `/rpc` through the sidecar."""
    service = trimicro.Service("greeter")

    @service.endpoint("Say.Hello")
    async def hello(req: dict[str, str]) -> dict[str, str]:
        return {"msg": f"Hello {req['name']} from Python"}

    return service


@asynccontextmanager
async def running_sidecar(
    app: AppProcess, *services: trimicro.Service, **options: Any
) -> AsyncIterator[tuple[Sidecar, Cluster]]:
    """The sidecar for `app` as service `hello` (endpoint `Say.Hello`), with `services`, on
    a fresh in-memory cluster."""
    defaults: dict[str, Any] = {
        "name": "hello", "server_address": app.address, "healthcheck": app.health_url,
        "endpoints": [parse_endpoint("Say.Hello")], "health_interval": INTERVAL,
        "address": "127.0.0.1:0",
    }  # fmt: skip
    async with open_cluster(*services) as cluster:
        plugins = {"registry": cluster.registry, "transport": cluster.transport}
        merged = {**defaults, **plugins, "broker": cluster.transport, **options}
        async with open_sidecar(**merged) as sidecar:
            yield sidecar, cluster


async def nodes_of(cluster: Cluster, service: str) -> list[Any]:
    async with trimicro.registry.open_registry(cluster.registry) as registry:
        return [node for r in await registry.get_service(service) for node in r.nodes]


def http_client(sidecar: Sidecar) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sidecar.url, trust_env=False, timeout=10)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> float:
    """Poll `check` until it holds; how long that took (fails after `within` seconds)."""
    start = trio.current_time()
    with trio.fail_after(within):
        while not await check():
            await trio.sleep(0.02)
    return trio.current_time() - start


async def registered(sidecar: Sidecar) -> None:
    """Wait until the sidecar serves the app's name (its first health check passed)."""

    async def serving() -> bool:
        return sidecar.presence.node is not None

    await eventually(serving)
