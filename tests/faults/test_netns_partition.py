"""A real network partition: a service in its own network namespace behind a veth pair,
called over QUIC; the link goes down (partition) and up again (heal). Needs root and
`ip netns` (skipped otherwise, saying why)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import serialization

import trimicro
from trimicro import errors
from trimicro.session._quic_tls import generate_identity

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _netns_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = f"tmprobe{os.getpid()}"
    if _ip("netns", "add", probe).returncode != 0:
        return "ip netns add is not permitted here"
    _ip("netns", "del", probe)
    return None


@pytest.fixture
def namespace() -> Iterator[tuple[str, str, str]]:
    """A namespace with a veth pair to the host: (name, host veth, namespace address)."""
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    pid = os.getpid() % 200 + 20
    name, host, inner = f"tmns{pid}", f"tmh{pid}", f"tmn{pid}"
    host_ip, inner_ip = f"10.213.{pid}.1", f"10.213.{pid}.2"
    commands = [
        ("netns", "add", name),
        ("link", "add", host, "type", "veth", "peer", "name", inner),
        ("link", "set", inner, "netns", name),
        ("addr", "add", f"{host_ip}/24", "dev", host),
        ("link", "set", host, "up"),
        ("-n", name, "addr", "add", f"{inner_ip}/24", "dev", inner),
        ("-n", name, "link", "set", inner, "up"),
        ("-n", name, "link", "set", "lo", "up"),
    ]
    try:
        for command in commands:
            result = _ip(*command)
            assert result.returncode == 0, f"ip {' '.join(command)}: {result.stderr}"
        yield name, host, inner_ip
    finally:
        _ip("link", "del", host)
        _ip("netns", "del", name)


def _identity_files(tmp_path: Path) -> tuple[str, str, str]:
    identity = generate_identity("trimicro-test")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(identity.certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert), str(key), identity.cert_sha256


async def _hello(client: trimicro.Client, address: str, name: str) -> object:
    with trio.fail_after(1):
        return await client.call("greeter", "Say.Hello", {"name": name}, address=address)


@pytest.fixture
def greeter_address(namespace: tuple[str, str, str], tmp_path: Path) -> Iterator[str]:
    """The greeter example serving inside the namespace; its pinned QUIC address."""
    name, _, inner_ip = namespace
    cert, key, pin = _identity_files(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRIMICRO_TLS_CERT": cert,
        "TRIMICRO_TLS_KEY": key,
        "TRIMICRO_REGISTRY": "memory://netns",
    }
    port = 47000 + os.getpid() % 1000
    command = ["ip", "netns", "exec", name, sys.executable, "-m", "trimicro", "run"]
    command += ["examples.greeter:service", "--address", f"{inner_ip}:{port}"]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        for _ in range(50):  # log lines, then "serving greeter on ADDRESS (NODE)"
            line = proc.stderr.readline()
            if not line or line.startswith(b"serving greeter"):
                break
        assert line.startswith(b"serving greeter"), line
        yield f"quic://{inner_ip}:{port}?cert_sha256={pin}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


async def test_calls_stop_during_a_partition_and_resume_after_it_heals(
    namespace: tuple[str, str, str], greeter_address: str
) -> None:
    _, host, _ = namespace
    address = greeter_address
    async with trimicro.open_client(registry="memory://netns-client") as client:
        assert await _hello(client, address, "before") == {"msg": "Hello before"}
        assert _ip("link", "set", host, "down").returncode == 0  # the partition
        with pytest.raises((trio.TooSlowError, errors.Error)):
            await _hello(client, address, "during")
        assert _ip("link", "set", host, "up").returncode == 0  # the heal
        healed = trio.current_time()
        while True:
            try:
                reply = await _hello(client, address, "after")
                break
            except (trio.TooSlowError, errors.Error):
                assert trio.current_time() - healed < 15, "calls did not resume"
        assert reply == {"msg": "Hello after"}
