"""Start real etcd servers on free loopback ports for the tests, and stop them: one server
(`EtcdProcess`), a cluster of members (`EtcdCluster`), and a TCP proxy the tests can cut
(`TcpProxy`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import httpx
import pytest
import trio


def _free_port() -> int:
    return _free_ports(1)[0]


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (held together while chosen, so no repeats)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class EtcdProcess:
    def __init__(self, name: str = "default", ports: tuple[int, int] | None = None) -> None:
        if not shutil.which("etcd"):
            pytest.skip("etcd is not installed (scripts/install-servers.sh installs it)")
        self.name = name
        self.port, self.peer_port = ports or _free_ports(2)
        self.base = tempfile.mkdtemp(prefix="etcd-")
        self.data, self.log = f"{self.base}/data", f"{self.base}/etcd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"etcd://{self.host}"

    @property
    def peer(self) -> str:
        return f"{self.name}=http://127.0.0.1:{self.peer_port}"

    def start(self, cluster: str | None = None, extra: tuple[str, ...] = ()) -> None:
        """Start; with `cluster` (every member's `name=peer-url`), as one member of it, and
        without waiting: a member is healthy only once a quorum of them runs."""
        client, peer = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer_port}"
        with open(self.log, "wb") as log:  # for `did not start`
            self.proc = subprocess.Popen(
                ["etcd", "--name", self.name, "--data-dir", self.data,
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", cluster or self.peer, *extra],
                stdout=log, stderr=log,
            )  # fmt: skip
        if cluster is None:
            self.wait_healthy()

    def wait_healthy(self) -> None:
        for _ in range(200):
            try:
                if httpx.get(f"http://{self.host}/health", timeout=0.2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        with open(self.log, "rb") as log:
            tail = log.read()[-2000:].decode(errors="replace")
        raise RuntimeError(f"etcd {self.name} did not start; its log ends:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL ends a SIGSTOPped process too
            self.proc.wait()
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class EtcdCluster:
    """`size` etcd members forming one cluster on loopback (fast elections: heartbeat 50 ms,
    election timeout 500 ms, so losing the leader costs well under a second)."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self.members = self._new_members()

    def _new_members(self) -> list[EtcdProcess]:
        ports = _free_ports(2 * self.size)
        return [EtcdProcess(f"m{i}", (ports[2 * i], ports[2 * i + 1])) for i in range(self.size)]

    def start(self) -> None:
        """Start every member; once more on fresh ports if one did not start (a port chosen
        free may be taken by the time etcd binds it)."""
        try:
            self._start()
        except RuntimeError:
            self.cleanup()
            self.members = self._new_members()
            self._start()

    def _start(self) -> None:
        cluster = ",".join(m.peer for m in self.members)
        token = ("--initial-cluster-token", f"trimicro-{self.members[0].port}")
        fast = ("--heartbeat-interval", "50", "--election-timeout", "500")
        for member in self.members:
            member.start(cluster, (*token, *fast))
        for member in self.members:
            member.wait_healthy()

    def cleanup(self) -> None:
        for member in self.members:
            member.cleanup()


class TcpProxy:
    """A loopback TCP proxy to `target` (a port). `cut()` drops every connection and closes
    new ones at once until `restore()`, which may point it at another port."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.down = False
        self._scopes: set[trio.CancelScope] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def cut(self) -> None:
        self.down = True
        for scope in self._scopes:
            scope.cancel()

    def restore(self, target: int | None = None) -> None:
        self.target = target or self.target
        self.down = False

    async def _handle(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                if self.down:
                    return
                upstream = await trio.open_tcp_stream("127.0.0.1", self.target)
                async with upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                self._scopes.discard(scope)
                with trio.CancelScope(shield=True):
                    await client.aclose()

    @staticmethod
    async def _pump(
        source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        try:
            async for data in source:
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()
