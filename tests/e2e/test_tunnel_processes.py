"""Real processes over QUIC: node A listens, node B (which A cannot dial: it has no address)
dials A, and a service behind B answers calls made on A's side through the tunnel."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from trimicro.registry import open_registry
from trimicro.registry._cache import open_service_cache
from trimicro.rpc import Client, TransportFor
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import Tunnel, TunnelTransport, open_tunnel

from .conftest import ROOT

pytestmark = pytest.mark.e2e


@contextmanager
def node_b(address: str, token: str) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.tunnel.node_b", address, token],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


async def _wait_for_link(tunnel: Tunnel, proc: subprocess.Popen[str]) -> None:
    with trio.move_on_after(20):
        await tunnel.wait_links(1)
    if not tunnel.links():
        proc.send_signal(signal.SIGTERM)
        pytest.fail(f"node b never linked up: {proc.communicate(timeout=10)}")


async def test_a_service_behind_the_dialling_node_answers_through_the_tunnel() -> None:
    quic = QuicTransport()
    async with (
        open_registry("memory://tunnel-e2e") as registry,
        open_service_cache(registry) as cache,
        open_tunnel(quic, address="127.0.0.1:0", token="e2e-token", id="a") as a,
    ):
        pin = f"{a.address}?cert_sha256={quic.identity.cert_sha256}"
        with node_b(pin, "e2e-token") as proc:
            await _wait_for_link(a, proc)
            async with trio.open_nursery() as nursery:
                client = Client(nursery, cache, TransportFor(TunnelTransport(a)))
                replies = [
                    await client.call("greeter", "Say.Hello", {"name": f"n{i}"}, address="greeter")
                    for i in range(20)
                ]
                nursery.cancel_scope.cancel()
            (link,) = a.statistics().links
        assert [r["msg"] for r in replies] == [f"Hello n{i}" for i in range(20)]
        assert {r["pid"] for r in replies} == {proc.pid}  # answered in node b's process
        assert link.peer == "b" and not link.dialled and link.state == "connected"
        assert link.rtt is not None and link.rtt < 1.0


async def test_a_wrong_token_is_refused_with_a_clear_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "trimicro.session.tunnel")
    quic = QuicTransport()
    async with open_tunnel(quic, address="127.0.0.1:0", token="right", id="a") as a:
        pin = f"{a.address}?cert_sha256={quic.identity.cert_sha256}"
        with node_b(pin, "wrong") as proc:
            with trio.move_on_after(20):
                while a.statistics().auth_failures == 0:
                    await a._links_changed.park()  # a refused link goes down
            assert a.links() == []
            assert proc.poll() is None  # b keeps redialling, and keeps being refused
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("network token mismatch" in w for w in warnings), warnings
