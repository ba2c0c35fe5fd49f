"""The multicast socket of the `mdns://` registry: 224.0.0.251:5353 on every IPv4 interface.

Several processes on one machine share port 5353 (SO_REUSEADDR + SO_REUSEPORT: the kernel
gives each of them a copy of every multicast datagram). The group is joined, and every
datagram sent, on each interface separately: on the loopback interface so that processes on
one machine find each other even where the LAN interface drops or does not loop back
multicast (containers, CI, no network at all), and on each LAN interface for other machines.
A process thus hears a neighbour's datagram once per interface; the protocol is idempotent.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio

from ._base import RegistryError
from ._mdns_wire import MDNS_PORT

__all__ = ["MDNS_GROUP", "MDNS_PORT", "MulticastSocket", "default_interfaces", "open_multicast"]

log = logging.getLogger("trimicro.registry.mdns")

MDNS_GROUP = "224.0.0.251"
#: Largest datagram we read: anything an mDNS peer may send (RFC 6762 §17 caps it at 9,000).
MAX_DATAGRAM = 65535
LOOPBACK = "127.0.0.1"

# Linux ioctls and interface flags (linux/sockios.h, net/if.h): the standard library lists
# interfaces (if_nameindex) but not their addresses or state.
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_MULTICAST = 0x1000


def default_interfaces() -> list[str]:
    """IPv4 addresses of the interfaces to use: loopback first, then every multicast one up."""
    found = _linux_interfaces() if sys.platform == "linux" else []
    found = found or [a for a in (_default_route_address(),) if a]
    return list(dict.fromkeys([LOOPBACK, *found]))


def resolve_interface(spec: str) -> str:
    """An IPv4 address as given, or the address of the interface named `spec` (Linux)."""
    try:
        socket.inet_aton(spec)
        return spec
    except OSError:
        pass
    state = _interface_state(spec) if sys.platform == "linux" else None
    if state is None:
        raise ValueError(f"interface {spec!r} is neither an IPv4 address nor a named interface")
    return state[1]


def _linux_interfaces() -> list[str]:
    found = []
    for _, name in socket.if_nameindex():
        state = _interface_state(name)
        if state is None:
            continue
        flags, address = state
        if flags & _IFF_UP and flags & (_IFF_MULTICAST | _IFF_LOOPBACK):
            found.append(address)
    return found


def _interface_state(name: str) -> tuple[int, str] | None:
    import fcntl  # POSIX only; imported here so other platforms never need it

    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            flags = struct.unpack_from("H", fcntl.ioctl(probe, _SIOCGIFFLAGS, request), 16)[0]
            raw = fcntl.ioctl(probe, _SIOCGIFADDR, request)[20:24]
        except OSError:  # no IPv4 address, or gone since it was listed
            return None
    return flags, socket.inet_ntoa(raw)


def _default_route_address() -> str | None:
    # Connecting a UDP socket sends nothing; it only asks the kernel which address it would
    # send multicast from.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((MDNS_GROUP, MDNS_PORT))
            address: str = probe.getsockname()[0]
        except OSError:
            return None
    return None if address == "0.0.0.0" else address


class MulticastSocket:
    """One UDP socket bound to port 5353, joined to the group on `interfaces`."""

    def __init__(self, sock: trio.socket.SocketType, interfaces: Sequence[str]) -> None:
        self._sock = sock
        self.interfaces = tuple(interfaces)
        # IP_MULTICAST_IF is socket state: choosing it and sending must not interleave.
        self._send_lock = trio.Lock()

    async def send(self, data: bytes, destination: tuple[str, int] | None) -> None:
        """Unicast to `destination`, or multicast on every interface when it is None."""
        if destination is not None:
            await self._send_to(data, destination)
            return
        async with self._send_lock:
            for address in self.interfaces:
                self._sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address)
                )
                await self._send_to(data, (MDNS_GROUP, MDNS_PORT))

    async def _send_to(self, data: bytes, destination: tuple[str, int]) -> None:
        try:
            await self._sock.sendto(data, destination)
        except OSError as exc:  # an interface went down, a host is unreachable: not fatal
            log.debug("mDNS send to %s failed: %s", destination, exc)

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        while True:
            try:
                data, source = await self._sock.recvfrom(MAX_DATAGRAM)
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                log.debug("mDNS receive failed: %s", exc)
                continue
            return data, (source[0], source[1])


@asynccontextmanager
async def open_multicast(interfaces: Sequence[str] | None = None) -> AsyncIterator[MulticastSocket]:
    """Bind 5353 and join the group on `interfaces` (default: `default_interfaces()`)."""
    wanted = list(interfaces) if interfaces is not None else default_interfaces()
    with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        await _bind(sock)
        joined = [address for address in wanted if _join(sock, address)]
        if not joined:
            raise RegistryError(f"could not join {MDNS_GROUP} on any of {wanted}")
        yield MulticastSocket(sock, joined)


async def _bind(sock: trio.socket.SocketType) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)  # RFC 6762 §11
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)  # neighbours on this host
    try:
        await sock.bind(("", MDNS_PORT))
    except OSError as exc:
        raise RegistryError(
            f"cannot bind UDP port {MDNS_PORT} for mDNS ({exc.strerror}): another program "
            "holds it without SO_REUSEADDR/SO_REUSEPORT"
        ) from None


def _join(sock: trio.socket.SocketType, address: str) -> bool:
    request = socket.inet_aton(MDNS_GROUP) + socket.inet_aton(address)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:  # two addresses on one interface: already joined
            return True
        log.info("cannot join %s on %s: %s", MDNS_GROUP, address, exc)
        return False
    return True
