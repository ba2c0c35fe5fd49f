"""Three network nodes A-B-C in a line, each site with its own registry, as real processes:
a service in C's site answers calls made at A's site through TRIMICRO_PROXY."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from .conftest import ROOT, cli

pytestmark = pytest.mark.e2e

FAST = ["--announce", "1", "--prune", "4", "--keepalive", "1"]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _routes(env: dict[str, str], service: str) -> list[dict[str, object]]:
    result = cli("network", "routes", "--service", service, "--output", "json", env=env)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def _wait_for(predicate, seconds: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {seconds} s")


def test_calls_cross_three_sites_with_deadlines_and_routes_go_with_a_node(
    start_service, site_env
) -> None:
    base = site_env["TRIMICRO_REGISTRY"]
    sites = {name: {**site_env, "TRIMICRO_REGISTRY": f"{base}{name}"} for name in "abc"}
    for env in sites.values():
        env["TRIMICRO_PROXY"] = "trimicro.network"
    ports = {name: _free_udp_port() for name in "abc"}

    def node(name: str, *peers: str):  # type: ignore[no-untyped-def]
        args = ["--address", f"127.0.0.1:{ports[name]}", "--rpc-address", "127.0.0.1:0"]
        for peer in peers:
            args += ["--peer", f"127.0.0.1:{ports[peer]}"]
        env = {k: v for k, v in sites[name].items() if k != "TRIMICRO_PROXY"}
        return start_service("", "node", "--id", name, *args, *FAST, command="network",
                             env=env)  # fmt: skip

    node("a")
    b = node("b", "a")
    node("c")  # joins through `trimicro network connect`, below
    joined = cli("network", "connect", f"127.0.0.1:{ports['b']}", env=sites["c"])
    assert joined.returncode == 0, joined.stderr
    assert joined.stdout.strip() == "dialling 1 peer(s)"
    greeter_env = {k: v for k, v in sites["c"].items() if k != "TRIMICRO_PROXY"}
    greeter = start_service("examples.greeter:service", env=greeter_env)

    at_a = _wait_for(lambda: _routes(sites["a"], "greeter"))
    at_c = _routes(sites["c"], "greeter")
    assert at_a[0]["gateway"] == "b" and at_a[0]["link"] == "network"
    assert int(at_a[0]["metric"]) > int(at_c[0]["metric"]) == 1  # type: ignore[call-overload]

    def ask(*command: str) -> object:
        result = cli("network", *command, "--output", "json", env=sites["a"])
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert ask("connections") == [{"node": "b", "address": f"127.0.0.1:{ports['b']}"}]
    assert {n["id"] for n in ask("nodes")} == {"a", "b", "c"}  # type: ignore[index,union-attr]
    assert "greeter" in ask("services")  # type: ignore[operator]
    assert ask("routes", "--service", "greeter", "--gateway", "b")
    assert ask("routes", "--service", "greeter", "--router", "nobody") == []
    graph = ask("graph")
    assert graph["root"]["node"]["id"] == "a"  # type: ignore[index]
    assert [p["node"]["id"] for p in graph["root"]["peers"]] == ["b"]  # type: ignore[index]

    reply = cli("call", "greeter", "Say.Hello", '{"name": "Ann"}', env=sites["a"])
    assert reply.returncode == 0, reply.stderr
    assert json.loads(reply.stdout) == {"msg": "Hello Ann"}

    started = time.monotonic()
    slow = cli("call", "--timeout", "1", "greeter", "Say.Sleep", '{"seconds": 10}', env=sites["a"])
    elapsed = time.monotonic() - started
    assert slow.returncode == 1
    assert json.loads(slow.stderr)["code"] == 408
    assert elapsed < 5  # ~1 s of budget plus a Python process starting
    assert greeter.terminate() == 0
    assert greeter.proc.stderr is not None
    log = greeter.proc.stderr.read().decode()
    cancelled = [line for line in log.splitlines() if "Say.Sleep cancelled after" in line]
    assert cancelled, log
    assert float(cancelled[0].rsplit("after ", 1)[1].split()[0]) < 1.5

    greeter = start_service("examples.greeter:service", env=greeter_env)
    _wait_for(lambda: _routes(sites["a"], "greeter"))
    b.proc.kill()
    b.proc.wait()
    killed = time.monotonic()
    _wait_for(lambda: not _routes(sites["a"], "greeter"), seconds=20)
    assert time.monotonic() - killed <= 4 + 4  # the prune interval, plus a keepalive margin


def test_a_bad_network_flag_is_a_usage_error(site_env) -> None:
    result = cli("network", "node", "--peer", "x", "--resolver", "http", env=site_env)
    assert result.returncode == 2
    assert "--resolver-url" in result.stderr and "Traceback" not in result.stderr
    result = cli("network", "connect", "nowhere", env=site_env)
    assert result.returncode == 2
    assert "PEERS 'nowhere': expected HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.path.isdir(ROOT)
