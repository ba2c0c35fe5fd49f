"""Real processes on the direct broker: two members of queue group `audit` share 1,000
messages (each delivered exactly once), and a lone subscriber receives all of them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import trio

import trimicro

from .conftest import ROOT

pytestmark = pytest.mark.e2e

COUNT = 1000


def _subscriber(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trimicro", "subscribe", "events", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("subscribed to events"), line
    return proc


def _received(proc: subprocess.Popen[str]) -> list[int]:
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return [json.loads(line)["seq"] for line in out.splitlines()]


async def test_direct_broker_queue_group_across_processes(site_env: dict[str, str]) -> None:
    env = {**site_env, "TRIMICRO_BROKER": "direct://"}
    audit = [_subscriber(env, "--queue", "audit") for _ in range(2)]
    lone = _subscriber(env, "--count", str(COUNT))
    try:
        async with trimicro.open_client(
            registry=env["TRIMICRO_REGISTRY"], transport="tcp://", broker="direct://"
        ) as client:
            with trio.fail_after(60):
                for seq in range(COUNT):
                    await client.publish("events", {"seq": seq})
        for proc in audit:
            proc.send_signal(signal.SIGTERM)
        shares = [_received(proc) for proc in audit]
        everything = _received(lone)
    finally:
        for proc in [*audit, lone]:
            if proc.poll() is None:
                proc.kill()
    assert everything == list(range(COUNT))
    assert sorted(shares[0] + shares[1]) == list(range(COUNT))
    assert shares[0] and shares[1]
