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
