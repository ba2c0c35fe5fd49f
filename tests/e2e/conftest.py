"""Helpers for end-to-end tests: real `trimicro` processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]


@attrs.define
class ServiceProcess:
    proc: subprocess.Popen[bytes]
    address: str
    node_id: str

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def cli(*args: str, env: dict[str, str], input: str | None = None, timeout: float = 30):
    """Run the `trimicro` command; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "trimicro", *args],
        env=env,
        cwd=ROOT,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def site_env(tmp_path: Path) -> dict[str, str]:
    """An environment on a registry domain of this test's own, so tests never see each other."""
    env = dict(os.environ)
    env["TRIMICRO_REGISTRY"] = f"mdns://?domain=t{os.getpid()}x{abs(hash(tmp_path)) % 10**6}"
    env.pop("TRIMICRO_TRANSPORT", None)  # the default, quic://
    env["PYTHONPATH"] = str(ROOT)
    env.pop("TRIMICRO_ADDRESS", None)
    return env


@pytest.fixture
def start_service(site_env: dict[str, str]) -> Iterator[object]:
    started: list[ServiceProcess] = []

    def start(
        target: str, *extra: str, command: str = "run", env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """`trimicro run TARGET EXTRA...`, or `trimicro COMMAND EXTRA...` (target "")."""
        args = [command, target, *extra] if target else [command, *extra]
        proc = subprocess.Popen(
            [sys.executable, "-m", "trimicro", *args],
            env=env or site_env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        for _ in range(200):
            line = proc.stderr.readline().decode()
            if not line:
                break
            if line.startswith("serving "):
                # "serving greeter on 127.0.0.1:PORT (NODE)"
                parts = line.split()
                service = ServiceProcess(proc, parts[3], parts[4].strip("()"))
                started.append(service)
                return service
        proc.kill()
        raise RuntimeError(f"{target} did not start")

    yield start
    for service in started:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()
        if service.proc.stderr:
            service.proc.stderr.close()
