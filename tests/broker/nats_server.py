"""Start a real `nats-server` on a free loopback port for a test, and stop it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(port: int, *extra: str) -> subprocess.Popen[bytes]:
    """A nats-server on 127.0.0.1:port, accepting connections when this returns."""
    if not shutil.which("nats-server") and not shutil.which(NATS):
        pytest.skip("nats-server is not installed (scripts/install-servers.sh installs it)")
    proc = subprocess.Popen(
        [NATS, "-a", "127.0.0.1", "-p", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("nats-server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


@contextmanager
def nats_server(port: int | None = None, *extra: str) -> Iterator[int]:
    port = port or free_port()
    proc = start(port, *extra)
    try:
        yield port
    finally:
        stop(proc)
