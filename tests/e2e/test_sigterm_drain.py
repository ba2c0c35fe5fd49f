"""SIGTERM on a real process: the in-flight call completes, the node is deregistered before
the listener closes, and the process exits 0."""

from __future__ import annotations

import signal

import pytest
import trio

import trimicro
from trimicro import errors
from trimicro.registry import open_registry

pytestmark = pytest.mark.e2e


async def test_sigterm_drains_in_flight_call_then_exits_zero(start_service, site_env) -> None:
    service = start_service("examples.greeter:service")
    registry_url = site_env["TRIMICRO_REGISTRY"]
    async with (
        open_registry(registry_url) as registry,
        trimicro.open_client(registry=registry_url, transport="quic://") as client,
    ):
        assert await registry.get_service("greeter")
        results: list[object] = []

        async def slow_call() -> None:
            results.append(await client.call("greeter", "Say.Sleep", {"seconds": 1.5}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_call)
            await trio.sleep(0.3)  # the call is in flight
            service.proc.send_signal(signal.SIGTERM)
            await trio.sleep(0.5)  # SIGTERM handled, drain under way

            # Deregistered already...
            assert await registry.get_service("greeter") == []
            # ...while the listener still answers: new calls are refused (nothing runs).
            with pytest.raises(errors.Error) as refused:
                await client.call(
                    "greeter", "Say.Hello", {"name": "late"}, address=f"quic://{service.address}"
                )
            assert refused.value.code == 503
            assert "shutting down" in refused.value.detail

    assert len(results) == 1 and results[0]["slept"] >= 1.5
    assert await trio.to_thread.run_sync(service.proc.wait) == 0


async def test_trimicro_run_in_a_script_stops_on_sigint(site_env) -> None:
    """The synchronous entry point users put at the bottom of a script: `trimicro.run(service)`
    serves until Ctrl-C (SIGINT), then deregisters and exits 0."""
    import sys

    from .conftest import ROOT

    script = "import trimicro; from examples.greeter import service; trimicro.run(service)"
    proc = await trio.lowlevel.open_process([sys.executable, "-c", script], env=site_env, cwd=ROOT)
    registry_url = site_env["TRIMICRO_REGISTRY"]
    try:
        async with (
            open_registry(registry_url) as registry,
            trimicro.open_client(registry=registry_url, transport="quic://") as client,
        ):
            with trio.fail_after(20):
                while not await registry.get_service("greeter"):
                    await trio.sleep(0.1)
            assert await client.call("greeter", "Say.Hello", {"name": "Ed"}) == {"msg": "Hello Ed"}
            proc.send_signal(signal.SIGINT)
            with trio.fail_after(20):
                assert await proc.wait() == 0
            assert await registry.get_service("greeter") == []
    finally:
        if proc.poll() is None:
            proc.kill()
