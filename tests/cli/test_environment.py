"""Bad `TRIMICRO_*` values fail at start, whatever the command: exit 2 and one line on
stderr naming the variable, never a traceback (DESIGN.md 3 and 4)."""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import ROOT, cli, cli_env

pytestmark = pytest.mark.e2e

#: Every command, with arguments that would otherwise get it going (servers bind port 0).
COMMANDS: dict[str, list[str]] = {
    "services": ["services"],
    "service": ["service", "greeter"],
    "call": ["call", "greeter", "Say.Hello", "{}"],
    "stream": ["stream", "counter", "Count.Up", "{}"],
    "health": ["health", "greeter"],
    "publish": ["publish", "events", "{}"],
    "subscribe": ["subscribe", "events", "--count", "1"],
    "run": ["run", "examples.greeter:service"],
    "api": ["api", "--address", "127.0.0.1:0"],
    "web": ["web", "--address", "127.0.0.1:0"],
    "proxy": ["proxy", "--address", "127.0.0.1:0"],
    "sidecar": [
        "sidecar",
        "--server-name",
        "app",
        "--server-address",
        "127.0.0.1:9",
        "--address",
        "127.0.0.1:0",
    ],
    "network node": ["network", "node", "--address", "127.0.0.1:0"],
    "network nodes": ["network", "nodes"],
    "demo": ["demo"],
}

_NOT_PEM = str(ROOT / "pyproject.toml")  # a readable file that holds no PEM

#: (variables, what the one line must say): each documented variable with a bad value.
BAD: dict[str, tuple[dict[str, str], str]] = {
    "cert without key": ({"TRIMICRO_TLS_CERT": _NOT_PEM}, "TRIMICRO_TLS_KEY is not set"),
    "key without cert": ({"TRIMICRO_TLS_KEY": _NOT_PEM}, "TRIMICRO_TLS_CERT is not set"),
    "cert not PEM": (
        {"TRIMICRO_TLS_CERT": _NOT_PEM, "TRIMICRO_TLS_KEY": _NOT_PEM},
        "TRIMICRO_TLS_CERT=",
    ),
    "cert missing": (
        {"TRIMICRO_TLS_CERT": "/nonexistent/cert.pem", "TRIMICRO_TLS_KEY": _NOT_PEM},
        "TRIMICRO_TLS_CERT='/nonexistent/cert.pem': No such file",
    ),
    "CA missing": ({"TRIMICRO_TLS_CA": "/nonexistent"}, "TRIMICRO_TLS_CA='/nonexistent': No such"),
    "CA not PEM": ({"TRIMICRO_TLS_CA": _NOT_PEM}, "TRIMICRO_TLS_CA="),
    "address": ({"TRIMICRO_ADDRESS": "nonsense"}, "TRIMICRO_ADDRESS"),
    "address port": ({"TRIMICRO_ADDRESS": "127.0.0.1:99999"}, "TRIMICRO_ADDRESS"),
    "address host": ({"TRIMICRO_ADDRESS": "no such host:80"}, "TRIMICRO_ADDRESS"),
    "registry scheme": ({"TRIMICRO_REGISTRY": "bogus://x"}, "TRIMICRO_REGISTRY"),
    "registry mdns option": ({"TRIMICRO_REGISTRY": "mdns://?domain=a b"}, "TRIMICRO_REGISTRY"),
    "registry etcd port": ({"TRIMICRO_REGISTRY": "etcd://host:port"}, "TRIMICRO_REGISTRY"),
    "transport": ({"TRIMICRO_TRANSPORT": "carrier-pigeon"}, "TRIMICRO_TRANSPORT"),
    "transport option": (
        {"TRIMICRO_TRANSPORT": "quic://?max_datagram_size=x"},
        "TRIMICRO_TRANSPORT",
    ),
    "broker scheme": ({"TRIMICRO_BROKER": "bogus://"}, "TRIMICRO_BROKER"),
    "broker nats port": ({"TRIMICRO_BROKER": "nats://host:port"}, "TRIMICRO_BROKER"),
    "proxy": ({"TRIMICRO_PROXY": "a b"}, "TRIMICRO_PROXY"),
    "namespace": ({"TRIMICRO_NAMESPACE": "a b"}, "TRIMICRO_NAMESPACE"),
}


def _check(args: list[str], variables: dict[str, str], needle: str) -> str | None:
    """None when `trimicro ARGS` fails as it should; what went wrong otherwise."""
    try:
        result = cli(*args, env=cli_env(**variables), timeout=20)
    except subprocess.TimeoutExpired:
        return f"{args} with {variables}: still running after 20 s (the value was accepted)"
    lines = result.stderr.strip().splitlines()
    if result.returncode == 2 and len(lines) == 1 and needle in lines[0]:
        assert "Traceback" not in result.stderr
        return None
    return f"{args} with {variables}: exit {result.returncode}, stderr {result.stderr[-600:]!r}"


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
def test_call_refuses_a_bad_variable_with_one_line(bad: str) -> None:
    variables, needle = BAD[bad]
    assert _check(COMMANDS["call"], variables, needle) is None


_SERVING = [k for k in BAD if k.startswith(("cert", "key", "CA", "address"))]


@pytest.mark.parametrize("bad", _SERVING, ids=_SERVING)
def test_run_refuses_bad_tls_or_address_with_one_line(bad: str) -> None:
    variables, needle = BAD[bad]
    assert _check(COMMANDS["run"], variables, needle) is None


def test_every_command_checks_the_environment_at_start() -> None:
    """Every command, each with one of the values that used to get through to a traceback
    (the TLS files; a bad TRIMICRO_ADDRESS made the sidecar log a traceback per registration
    attempt and retry forever; a plugin URL's own options), in turn."""
    kinds = ["key without cert", "address", "CA missing", "registry etcd port", "cert not PEM"]
    cases = [(args, *BAD[kinds[i % len(kinds)]]) for i, args in enumerate(COMMANDS.values())]
    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(lambda case: _check(*case), cases) if f]
    assert not failures, "\n".join(failures)


def test_a_bad_network_token_is_one_line_and_exit_2() -> None:
    # Not UTF-8: the HMAC over it would fail at the first peer's handshake, not at start.
    env = cli_env()
    env_bytes = {k.encode(): v.encode() for k, v in env.items()}
    env_bytes[b"TRIMICRO_NETWORK_TOKEN"] = b"\xff\xfe"
    result = subprocess.run(
        [sys.executable, "-m", "trimicro", "network", "node", "--address", "127.0.0.1:0"],
        env=env_bytes,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "TRIMICRO_NETWORK_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["publish", "events", "{}", "--broker", "nats://host:port"], "broker (argument)"),
        (["network", "node", "--registry", "etcd://host:port"], "registry (argument)"),
        (["network", "node", "--transport", "quic://?mtu=9000"], "transport (argument)"),
        (["services", "--proxy", "a b"], "proxy (argument)"),  # checked even where unused
    ],
)
def test_global_flags_are_checked_like_the_variables(args: list[str], needle: str) -> None:
    result = cli(*args, env=cli_env())
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def _serving_line(env: dict[str, str], *extra: str) -> str:
    """Start `trimicro api` on any port and return its "serving api gateway ..." line."""
    args = [sys.executable, "-m", "trimicro", "api", "--address", "127.0.0.1:0", *extra]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith("serving api gateway"):
                return line.strip()
        raise AssertionError(f"trimicro api exited {proc.wait()} before serving")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        proc.stderr.close()


def test_the_gateway_namespace_comes_from_trimicro_namespace() -> None:
    line = _serving_line(cli_env(TRIMICRO_NAMESPACE="acme.api"))
    assert line.endswith("namespace acme.api)"), line


def test_namespace_flag_overrides_trimicro_namespace() -> None:
    line = _serving_line(cli_env(TRIMICRO_NAMESPACE="acme.api"), "--namespace", "")
    assert line.endswith("namespace )"), line  # '' turns the prefix off


def test_api_help_names_trimicro_namespace() -> None:
    result = cli("api", "--help", env=cli_env())
    assert result.returncode == 0
    assert "TRIMICRO_NAMESPACE" in result.stdout


def test_a_bad_namespace_flag_is_one_line_and_exit_2() -> None:
    result = cli("api", "--address", "127.0.0.1:0", "--namespace", "a/b", env=cli_env())
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "trimicro: namespace (argument): 'a/b' is not dot-separated names without spaces or "
        "slashes, e.g. trimicro.api"
    ]
