"""Real processes on the direct broker: two members of queue group `audit` share 1,000
messages (each delivered exactly once), and a lone subscriber receives all of them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import trio

import trimicro
from tests.broker.nats_server import nats_server

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


@pytest.fixture(params=["direct", "nats"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "direct":
        yield "direct://"
        return
    with nats_server() as port:
        yield f"nats://127.0.0.1:{port}"


async def test_queue_group_across_processes(site_env: dict[str, str], broker_url: str) -> None:
    env = {**site_env, "TRIMICRO_BROKER": broker_url}
    audit = [_subscriber(env, "--queue", "audit") for _ in range(2)]
    lone = _subscriber(env, "--count", str(COUNT))
    try:
        async with trimicro.open_client(
            registry=env["TRIMICRO_REGISTRY"], transport="quic://", broker=broker_url
        ) as client:
            with trio.fail_after(60):
                for seq in range(COUNT):
                    await client.publish("events", {"seq": seq})
        # The lone subscriber exits after its 1,000th message; by then the broker has sent
        # every message, and a moment later the audit members have them too.
        everything = _received(lone)
        await trio.sleep(0.5)
        for proc in audit:
            proc.send_signal(signal.SIGTERM)
        shares = [_received(proc) for proc in audit]
    finally:
        for proc in [*audit, lone]:
            if proc.poll() is None:
                proc.kill()
    assert everything == list(range(COUNT))
    assert sorted(shares[0] + shares[1]) == list(range(COUNT))
    assert shares[0] and shares[1]


def test_the_publish_command_reaches_a_subscriber(site_env: dict[str, str]) -> None:
    env = {**site_env, "TRIMICRO_BROKER": "direct://"}
    subscriber = _subscriber(env, "--count", "2")
    try:
        first = subprocess.run(
            [sys.executable, "-m", "trimicro", "publish", "events", '{"seq": 0}'],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        second = subprocess.run(
            [sys.executable, "-m", "trimicro", "publish", "events"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=30, input='{"seq": 1}',
        )  # fmt: skip
        assert first.returncode == second.returncode == 0, first.stderr + second.stderr
        assert _received(subscriber) == [0, 1]
    finally:
        if subscriber.poll() is None:
            subscriber.kill()
