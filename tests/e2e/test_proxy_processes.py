"""`trimicro proxy` and `TRIMICRO_PROXY`/`--proxy`, as real processes on loopback."""

from __future__ import annotations

import json

import pytest

from .conftest import cli

pytestmark = pytest.mark.e2e


def _forwarded(site_env: dict[str, str]) -> int:
    stats = cli("call", "trimicro.proxy", "Debug.Stats", "{}", env=site_env)
    assert stats.returncode == 0, stats.stderr
    return int(json.loads(stats.stdout)["requests"])


def test_calls_go_through_the_proxy_by_name_address_and_flag(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    proxy = start_service("", "--address", "127.0.0.1:0", command="proxy")

    by_name = cli("call", "greeter", "Say.Hello", '{"name": "Ann"}',
                  env={**site_env, "TRIMICRO_PROXY": "trimicro.proxy"})  # fmt: skip
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout) == {"msg": "Hello Ann"}
    by_flag = cli("--proxy", proxy.address, "call", "greeter", "Say.Hello", '{"name": "Bo"}',
                  env=site_env)  # fmt: skip
    assert by_flag.returncode == 0, by_flag.stderr
    assert json.loads(by_flag.stdout) == {"msg": "Hello Bo"}
    # Debug.Stats counts what the proxy served: two forwarded calls, then this one.
    assert _forwarded(site_env) == 3


def test_errors_keep_their_exit_code_through_the_proxy(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    start_service("", "--address", "127.0.0.1:0", command="proxy")
    env = {**site_env, "TRIMICRO_PROXY": "trimicro.proxy"}
    result = cli("call", "greeter", "Say.Hello", '{"name": ""}', env=env)
    assert result.returncode == 1
    assert json.loads(result.stderr)["code"] == 400


def test_a_bad_proxy_value_is_a_usage_error(site_env) -> None:
    result = cli("services", env={**site_env, "TRIMICRO_PROXY": "host:port"})
    assert result.returncode == 2
    assert "TRIMICRO_PROXY" in result.stderr
    assert "Traceback" not in result.stderr
