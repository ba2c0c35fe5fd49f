"""The sidecar for real: the stand-in HTTP app (examples/sidecar/app.py), `trimicro sidecar`
and `trimicro call` as separate processes finding each other over mDNS."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial

import attrs
import httpx
import pytest
import trio

from trimicro.gateway._proxy import open_websocket
from trimicro.registry import open_registry

from .conftest import ROOT, cli

pytestmark = pytest.mark.e2e

#: The sidecars' health-check interval here (seconds).
INTERVAL = 0.5


@attrs.define
class Started:
    proc: subprocess.Popen[bytes]
    address: str


def _spawn(args: list[str], env: dict[str, str] | None, ready: str, field: int) -> Started:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    for _ in range(200):
        line = proc.stderr.readline().decode()
        if not line:
            break
        if line.startswith(ready):
            return Started(proc, line.split()[field])
    proc.kill()
    proc.wait()
    proc.stderr.close()
    raise RuntimeError(f"{args} did not start")


def _stop(started: Started) -> None:
    if started.proc.poll() is None:
        started.proc.kill()
    started.proc.wait(timeout=30)
    if started.proc.stderr:
        started.proc.stderr.close()


@pytest.fixture
def spawn(site_env: dict[str, str]) -> Iterator[object]:
    """`spawn.app()` starts the stand-in app, `spawn.sidecar(app, ...)` its sidecar."""
    started: list[Started] = []

    class Spawn:
        @staticmethod
        def app() -> Started:
            args = [sys.executable, "-m", "examples.sidecar.app", "--port", "0"]
            started.append(_spawn(args, None, "listening on ", 2))
            return started[-1]

        @staticmethod
        def sidecar(app: Started, *extra: str) -> Started:
            args = [
                sys.executable, "-m", "trimicro", "sidecar", "--server-name", "hello",
                "--server-address", app.address, "--address", "127.0.0.1:0",
                "--healthcheck", f"http://{app.address}/health", "--endpoint", "Say.Hello",
                "--healthcheck-interval", str(INTERVAL), *extra,
            ]  # fmt: skip
            started.append(_spawn(args, site_env, "serving sidecar on ", 3))
            return started[-1]

    yield Spawn
    for one in started:
        _stop(one)


async def _registered(url: str) -> dict[str, object]:
    """Wait until the sidecar at `url` has registered the app; its /health answer."""
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as http:
        with trio.fail_after(15):
            while True:
                answer = (await http.get("/health")).json()
                if answer["registered"]:
                    return dict(answer)
                await trio.sleep(0.1)


async def _nodes(registry_url: str) -> int:
    async with open_registry(registry_url) as registry:
        return sum(len(record.nodes) for record in await registry.get_service("hello"))


async def test_trimicro_call_reaches_the_app_and_a_stopped_app_leaves(
    spawn: object, site_env: dict[str, str]
) -> None:
    app = spawn.app()  # type: ignore[attr-defined]
    sidecar = spawn.sidecar(app)  # type: ignore[attr-defined]
    await _registered(sidecar.address)
    run = partial(cli, env=site_env)
    ok = await trio.to_thread.run_sync(run, "call", "hello", "Say.Hello", '{"name": "Ann"}')
    refused = await trio.to_thread.run_sync(run, "call", "hello", "Say.Hello", '{"name": ""}')
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"msg": "Hello Ann"}
    assert refused.returncode == 1
    assert json.loads(refused.stderr.strip().splitlines()[-1])["code"] == 400

    registry_url = site_env["TRIMICRO_REGISTRY"]
    assert await _nodes(registry_url) == 1
    app.proc.kill()
    app.proc.wait()
    killed = trio.current_time()
    with trio.fail_after(10):
        while await _nodes(registry_url):
            await trio.sleep(0.05)
    took = trio.current_time() - killed
    # Within the health-check interval, plus the time to deregister and look (each look
    # opens a registry and waits for answers).
    assert took < INTERVAL + 1.5, took
    listed = await trio.to_thread.run_sync(run, "--output", "json", "services")
    assert "hello" not in {s["name"] for s in json.loads(listed.stdout)}


async def test_http_surface_of_a_sidecar_process(spawn: object) -> None:
    app = spawn.app()  # type: ignore[attr-defined]
    sidecar = spawn.sidecar(app)  # type: ignore[attr-defined]
    health = await _registered(sidecar.address)
    async with httpx.AsyncClient(base_url=sidecar.address, trust_env=False, timeout=10) as http:
        record = (await http.get("/registry", params={"service": "hello"})).json()
        rpc = await http.post(
            "/rpc", json={"service": "hello", "endpoint": "Say.Hello", "request": {"name": "B"}}
        )
        bad = await http.post("/registry", json={"name": "x", "nodes": [{"id": "n"}]})
        host_port = sidecar.address.removeprefix("http://")
        async with open_websocket(host_port, "/broker?topic=greetings") as ws:
            published = await http.post("/broker?topic=greetings", json={"hi": 1})
            with trio.fail_after(10):
                message = json.loads(await ws.get_message())
    assert health["status"] == "ok"
    [node] = record[0]["nodes"]
    assert node["metadata"]["http_address"] == app.address
    assert node["metadata"]["sidecar"] == "http"
    assert rpc.json() == {"msg": "Hello B"}
    assert bad.status_code == 400
    assert bad.json()["detail"] == "record.nodes[0].address: required field missing"
    assert published.status_code == 200
    assert message == {"hi": 1}


async def test_sigterm_deregisters_and_exits_0(spawn: object, site_env: dict[str, str]) -> None:
    app = spawn.app()  # type: ignore[attr-defined]
    sidecar = spawn.sidecar(app)  # type: ignore[attr-defined]
    await _registered(sidecar.address)
    sidecar.proc.send_signal(signal.SIGTERM)
    code = await trio.to_thread.run_sync(partial(sidecar.proc.wait, timeout=30))
    assert code == 0
    assert await _nodes(site_env["TRIMICRO_REGISTRY"]) == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--server-address", "nowhere"], "--server-address"),
        (["--endpoint", "hello"], "must look like Service.Method"),
        (["--endpoint", "Say.Hello=nope"], "must start with /"),
        (["--healthcheck", "ftp://x/health"], "--healthcheck"),
        (["--address", "nowhere"], "--address 'nowhere' is not HOST:PORT"),
        (["--healthcheck-interval", "0"], "--healthcheck-interval"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    site_env: dict[str, str], flags: list[str], message: str
) -> None:
    base = ["--server-name", "hello", "--server-address", "127.0.0.1:9"]
    result = cli("sidecar", *base, *flags, env=site_env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_server_name_is_a_usage_error(site_env: dict[str, str]) -> None:
    result = cli("sidecar", "--server-address", "127.0.0.1:9", env=site_env)
    assert result.returncode == 2
    assert "--server-name" in result.stderr
