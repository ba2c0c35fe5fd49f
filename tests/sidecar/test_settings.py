"""The sidecar checks its settings when it starts: a bad one is a `ConfigError` naming it,
not a traceback logged at every registration attempt while the app is healthy."""

from __future__ import annotations

import pytest
import trio

import trimicro
from trimicro._config import ConfigError
from trimicro.sidecar import AppHealth, open_sidecar
from trimicro.sidecar._serve import Presence
from trimicro.testing import open_cluster


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"TRIMICRO_ADDRESS": "nonsense"}, "TRIMICRO_ADDRESS"),
        ({"TRIMICRO_PROXY": "a b"}, "TRIMICRO_PROXY"),
        ({"TRIMICRO_TLS_CA": "/nonexistent"}, "TRIMICRO_TLS_CA"),
        ({"TRIMICRO_TLS_CERT": "/nonexistent"}, "TRIMICRO_TLS_KEY is not set"),
    ],
)
async def test_a_bad_variable_fails_open_sidecar_at_start(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    async with open_cluster() as cluster:
        for variable, value in variables.items():
            monkeypatch.setenv(variable, value)
        options = {"registry": cluster.registry, "transport": cluster.transport}
        with pytest.raises(ConfigError, match=message):
            async with open_sidecar(
                name="hello", server_address="127.0.0.1:9", address="127.0.0.1:0", **options
            ):
                pytest.fail("the sidecar started")  # pragma: no cover
        monkeypatch.undo()  # before the cluster's own client closes


async def test_a_bad_rpc_address_fails_open_sidecar_at_start() -> None:
    async with open_cluster() as cluster:
        options = {"registry": cluster.registry, "transport": cluster.transport}
        with pytest.raises(ConfigError, match="'nowhere' is not HOST:PORT"):
            async with open_sidecar(
                name="hello", server_address="127.0.0.1:9", rpc_address="nowhere", **options
            ):
                pytest.fail("the sidecar started")  # pragma: no cover


async def test_presence_does_not_retry_a_config_error() -> None:
    async with open_cluster() as cluster:
        service = trimicro.Service(
            "hello", address="nowhere", registry=cluster.registry, transport=cluster.transport
        )
        health = AppHealth()
        health.report(True)
        presence = Presence(service, health, retry_after=0.01)
        with trio.fail_after(5), pytest.raises(ConfigError, match="address"):
            await presence.run()
