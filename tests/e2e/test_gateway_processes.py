"""The gateway for real: `trimicro api` and `trimicro run` as separate processes finding each
other over mDNS, and plain HTTP from outside."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def start_gateway(site_env: dict[str, str]) -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trimicro", "api", "--address", "127.0.0.1:0", *args],
            env=site_env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        started.append(proc)
        assert proc.stderr is not None
        for _ in range(200):
            line = proc.stderr.readline().decode()
            if not line:
                break
            if line.startswith("serving api gateway on "):
                return proc, line.split()[4]
        raise RuntimeError("the gateway did not start")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_gateway_process_serves_rpc_and_the_seed_flow(start_service, start_gateway) -> None:
    start_service("examples.greeter:service")
    start_service("examples.greeter_api:service")
    proc, url = start_gateway("--handler", "api")
    with httpx.Client(base_url=url, trust_env=False, timeout=15) as http:
        seed = http.get("/greeter/say/hello", params={"name": "John"})
        rpc = http.post(
            "/rpc", json={"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "Ann"}}
        )
        error = http.post(
            "/rpc", json={"service": "greeter", "endpoint": "Say.Hello", "request": {"name": ""}}
        )
    assert seed.status_code == 200, seed.text
    assert seed.json() == {"message": "Hello John"}
    assert rpc.json() == {"msg": "Hello Ann"}
    assert error.status_code == 400
    assert error.json()["detail"] == "name must not be empty"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_gateway_refuses_a_bad_address(site_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trimicro", "api", "--address", "nowhere"],
        env=site_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "is not HOST:PORT" in result.stderr
