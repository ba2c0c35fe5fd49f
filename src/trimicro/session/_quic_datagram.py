"""Datagram paths under QUIC: a small socket protocol, and its implementation on real UDP.

The QUIC driver needs only `sendto`/`recvfrom`, so tests swap in an in-memory network on
trio's clock with seeded faults (`trimicro.testing.MemoryNetwork`) and whole handshakes run
in virtual time. A `DatagramNetwork` makes sockets: `bind` for a server, `dial` for a client.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Protocol

import trio

__all__ = [
    "MAX_DATAGRAM",
    "RECEIVE_BATCH",
    "SOCKET_BUFFER",
    "Address",
    "DatagramNetwork",
    "DatagramSocket",
    "UdpNetwork",
    "UdpSocket",
    "is_loopback",
]

#: A socket address as `recvfrom` reports it: (host, port) for IPv4, a 4-tuple for IPv6.
Address = tuple[Any, ...]

#: Receive size: the largest UDP payload, so no datagram is ever truncated.
MAX_DATAGRAM = 65535
#: Datagrams a receive loop handles before yielding to other tasks (its drivers first of
#: all): large enough to batch a burst into one transmission, small enough to stay fair.
RECEIVE_BATCH = 64
#: Kernel socket buffers asked for (the kernel caps them at net.core.[rw]mem_max): a burst
#: of 16 KB loopback datagrams overflows Linux's ~200 KiB default and costs retransmissions.
SOCKET_BUFFER = 4 * 1024 * 1024


class DatagramSocket(Protocol):
    """One datagram socket. `sendto` may be called from many tasks; `recvfrom` from one."""

    @property
    def local_address(self) -> Address: ...

    async def sendto(self, data: bytes, addr: Address) -> None: ...

    async def recvfrom(self) -> tuple[bytes, Address]:
        """The next datagram; `OSError` (e.g. `ConnectionRefusedError` on a dialled socket)
        when the network reports one, `trio.ClosedResourceError` once closed."""
        ...

    async def aclose(self) -> None: ...


class DatagramNetwork(Protocol):
    """Makes datagram sockets: real UDP, or an in-memory network in tests."""

    async def bind(self, host: str, port: int) -> DatagramSocket:
        """A socket receiving on `host:port` (port 0: any free port). Raises `OSError`."""
        ...

    async def dial(self, host: str, port: int) -> tuple[DatagramSocket, Address]:
        """A socket for talking to `host:port` only, and the peer's address as `recvfrom`
        will report it. Raises `OSError` (e.g. the name does not resolve)."""
        ...


def is_loopback(addr: Address) -> bool:
    """Whether `addr` is on this machine's loopback interface (where big datagrams are safe)."""
    try:
        return ipaddress.ip_address(str(addr[0]).split("%")[0]).is_loopback
    except ValueError:
        return bool(addr[0] == "localhost")


class UdpSocket:
    """A non-blocking UDP socket as a `DatagramSocket`, driven by trio's I/O waits.

    `sendto` and `recvfrom` are not checkpoints when the kernel can act at once: a QUIC
    driver sends a burst and a receive loop drains a burst without a scheduling round trip
    per datagram (each loop yields on its own). They wait, cancellably, when it cannot.
    """

    def __init__(self, sock: socket.socket, *, connected: bool = False) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._connected = connected  # a dialled socket uses send(): BSDs refuse sendto()
        self._local: Address = sock.getsockname()
        self._closed = False
        # trio lets one task at a time wait for writability: senders queue here instead.
        self._send_lock = trio.Lock()

    @property
    def local_address(self) -> Address:
        return self._local

    async def sendto(self, data: bytes, addr: Address) -> None:
        while True:
            self._check_open()
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except BlockingIOError:
                async with self._send_lock:
                    await trio.lowlevel.wait_writable(self._sock)

    async def recvfrom(self) -> tuple[bytes, Address]:
        while True:
            self._check_open()
            try:
                return self._sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("socket is closed")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()
        await trio.lowlevel.checkpoint()


class UdpNetwork:
    """The real network: UDP sockets."""

    async def bind(self, host: str, port: int) -> UdpSocket:
        family, sockaddr = await _resolve(host, port, passive=True)
        sock = _new_socket(family)
        try:
            sock.bind(sockaddr)
        except BaseException:
            sock.close()
            raise
        return UdpSocket(sock)

    async def dial(self, host: str, port: int) -> tuple[UdpSocket, Address]:
        family, sockaddr = await _resolve(host, port, passive=False)
        sock = _new_socket(family)
        try:
            # A connected socket: the kernel filters other senders, and an ICMP "port
            # unreachable" surfaces as ConnectionRefusedError at once instead of a timeout.
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        return UdpSocket(sock, connected=True), sockaddr


async def _resolve(host: str, port: int, *, passive: bool) -> tuple[int, Address]:
    flags = socket.AI_PASSIVE if passive else 0
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=flags)
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise OSError(f"cannot resolve {host!r}")
    family, _type, _proto, _name, sockaddr = infos[0]
    return family, tuple(sockaddr)


def _new_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:  # pragma: no cover - a platform that refuses the size
            pass
    return sock
