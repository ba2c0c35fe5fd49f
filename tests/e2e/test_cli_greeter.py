"""The README's two-terminal workflow, for real: `trimicro run` in one process, the CLI in
others, discovering each other through the default (mDNS) registry."""

from __future__ import annotations

import json

import pytest

from .conftest import cli

pytestmark = pytest.mark.e2e


def test_call_prints_the_reply(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    result = cli("call", "greeter", "Say.Hello", '{"name": "Ann"}', env=site_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"msg": "Hello Ann"}


def test_output_json_parses_before_or_after_subcommand(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    before = cli("--output", "json", "services", env=site_env)
    after = cli("services", "--output", "json", env=site_env)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert (
        json.loads(before.stdout)
        == json.loads(after.stdout)
        == [{"name": "greeter", "versions": ["1.0.0"]}]
    )
    record = json.loads(cli("service", "greeter", "--output", "json", env=site_env).stdout)
    endpoints = {e["name"]: e for e in record[0]["endpoints"]}
    assert endpoints["Say.Hello"]["request"]["properties"] == {"name": {"type": "string"}}
    metadata = record[0]["nodes"][0]["metadata"]
    assert metadata["transport"] == "quic"  # the default
    assert len(metadata["cert_sha256"]) == 64  # the registry pins the node's certificate


def test_handler_error_is_exit_1_with_error_json(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    result = cli("call", "greeter", "Say.Hello", '{"name": ""}', env=site_env)
    assert result.returncode == 1
    assert json.loads(result.stderr) == {
        "id": "greeter",
        "code": 400,
        "detail": "name must not be empty",
        "status": "Bad Request",
    }


def test_request_from_stdin(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    result = cli("call", "greeter", "Say.Hello", env=site_env, input='{"name": "Stdin"}')
    assert json.loads(result.stdout) == {"msg": "Hello Stdin"}


def test_timeout_is_exit_1_with_408(start_service, site_env) -> None:
    start_service("examples.greeter:service")
    result = cli("call", "greeter", "Say.Sleep", '{"seconds": 5}', "--timeout", "0.2", env=site_env)
    assert result.returncode == 1
    assert json.loads(result.stderr)["code"] == 408


def test_health_lists_each_node(start_service, site_env) -> None:
    first = start_service("examples.greeter:service")
    second = start_service("examples.greeter:service")
    result = cli("health", "greeter", "--output", "json", env=site_env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted((r["id"], r["status"]) for r in rows) == sorted(
        [(first.node_id, "ok"), (second.node_id, "ok")]
    )


def test_stream_prints_one_reply_per_line(start_service, site_env) -> None:
    start_service("examples.streaming:service")
    result = cli("stream", "counter", "Count.Up", '{"to": 3}', env=site_env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"value": 0},
        {"value": 1},
        {"value": 2},
    ]


def test_tcp_is_one_flag_away_and_the_cli_follows_the_registry(start_service, site_env) -> None:
    # The service serves TCP; the CLI (default quic://) dials whatever the node's metadata says.
    start_service("examples.greeter:service", "--transport", "tcp://")
    record = json.loads(cli("service", "greeter", "--output", "json", env=site_env).stdout)
    assert record[0]["nodes"][0]["metadata"]["transport"] == "tcp"
    result = cli("call", "greeter", "Say.Hello", '{"name": "Tom"}', env=site_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"msg": "Hello Tom"}


def test_call_address_reaches_one_node_without_the_registry(start_service, site_env) -> None:
    node = start_service("examples.greeter:service")
    elsewhere = {**site_env, "TRIMICRO_REGISTRY": "memory://nothing-registered"}
    result = cli("call", "--address", node.address, "greeter", "Say.Hello", '{"name": "Di"}',
                 env=elsewhere)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"msg": "Hello Di"}
    bad = cli("call", "--address", "nowhere", "greeter", "Say.Hello", "{}", env=elsewhere)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "trimicro: --address 'nowhere': expected [SCHEME://]HOST:PORT"
