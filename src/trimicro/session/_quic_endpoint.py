"""Where QUIC connections meet sockets: a server endpoint demultiplexing many connections on
one socket (as aioquic's asyncio/server.py), and a client connection on a socket of its own.

Server: a datagram goes to the connection owning its destination connection ID (the IDs a
connection issues later are mapped too). Only a full-size Initial may create a connection,
and only if its first packet decrypts, so garbage costs one failed decryption and no state;
unsupported versions get a Version Negotiation reply (never to a Version Negotiation packet,
which two servers could bounce forever). Connections are bounded in number, and those still
handshaking in number and in time.

Client: one connected socket per connection (`DatagramNetwork.dial`). The kernel then
demultiplexes, and "port unreachable" comes back at once as ConnectionRefusedError instead
of a dial timeout; the rpc layer keeps one connection per peer, so sockets stay few.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable

import trio
from aioquic._buffer import Buffer
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.packet import (
    QuicHeader,
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from ._quic_connection import KEEPALIVE_INTERVAL, QuicCounters, QuicDriver
from ._quic_datagram import RECEIVE_BATCH, Address, DatagramSocket
from ._quic_flow import WindowedQuicConnection

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "MAX_CONNECTIONS",
    "MAX_HANDSHAKING",
    "QuicServerEndpoint",
    "start_client",
]

log = logging.getLogger("trimicro.session.quic")

#: Connections one server endpoint holds; further Initials are dropped (the client's dial
#: times out and it tries another node).
MAX_CONNECTIONS = 4096
#: Connections still handshaking at once: bounds what a flood of spoofed Initials can hold.
MAX_HANDSHAKING = 256
#: Seconds a server gives a handshake: twice the client's dial timeout.
HANDSHAKE_TIMEOUT = 10.0

OnConnection = Callable[[QuicDriver], Awaitable[None]]


class QuicServerEndpoint:
    """Many QUIC connections on one socket; `on_connection(driver)` runs for each one whose
    handshake completes, and the connection closes when it returns."""

    def __init__(
        self,
        sock: DatagramSocket,
        configure: Callable[[Address], QuicConfiguration],
        on_connection: OnConnection,
        counters: QuicCounters,
        *,
        keepalive: float = KEEPALIVE_INTERVAL,
        max_connections: int = MAX_CONNECTIONS,
        max_handshaking: int = MAX_HANDSHAKING,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._sock = sock
        self._configure = configure
        self._on_connection = on_connection
        self._counters = counters
        self._keepalive = keepalive
        self._max_connections = max_connections
        self._max_handshaking = max_handshaking
        self._handshake_timeout = handshake_timeout
        self._by_cid: dict[bytes, QuicDriver] = {}
        self._cids: dict[QuicDriver, set[bytes]] = {}
        # Only to read connection_id_length and supported_versions, shared by all.
        self._defaults = QuicConfiguration(is_client=False)

    @property
    def connections(self) -> int:
        return len(self._cids)

    async def serve(self) -> None:
        """Receive and dispatch until cancelled (or the socket closes)."""
        async with trio.open_nursery() as nursery:
            for count in itertools.count(1):
                if count % RECEIVE_BATCH == 0:
                    await trio.lowlevel.checkpoint()  # recvfrom may not yield in a burst
                try:
                    data, addr = await self._sock.recvfrom()
                except trio.ClosedResourceError:
                    break
                except OSError as exc:  # e.g. an ICMP error for a datagram we sent
                    log.debug("server socket: %s", exc)
                    continue
                self._counters.received(len(data))
                await self._dispatch(data, addr, nursery)
            nursery.cancel_scope.cancel()

    async def _dispatch(self, data: bytes, addr: Address, nursery: trio.Nursery) -> None:
        header = self._parse(data)
        if header is None:
            return
        driver = self._by_cid.get(header.destination_cid)
        if driver is not None:
            driver.datagram_received(data, addr)
        elif self._needs_version_negotiation(header, data):
            await self._negotiate_version(header, addr)
        elif self._may_accept(header, data):
            self._accept(header, data, addr, nursery)

    def _parse(self, data: bytes) -> QuicHeader | None:
        try:
            return pull_quic_header(
                Buffer(data=data), host_cid_length=self._defaults.connection_id_length
            )
        except ValueError:
            return None  # not QUIC: dropped without a reply

    def _needs_version_negotiation(self, header: QuicHeader, data: bytes) -> bool:
        return (
            header.packet_type != QuicPacketType.VERSION_NEGOTIATION
            and header.version is not None
            and header.version not in self._defaults.supported_versions
            # RFC 9000 section 6.1: only a full-size datagram may cost us a reply.
            and len(data) >= SMALLEST_MAX_DATAGRAM_SIZE
        )

    async def _negotiate_version(self, header: QuicHeader, addr: Address) -> None:
        reply = encode_quic_version_negotiation(
            source_cid=header.destination_cid,
            destination_cid=header.source_cid,
            supported_versions=self._defaults.supported_versions,
        )
        try:
            await self._sock.sendto(reply, addr)
        except OSError:
            return
        self._counters.sent(len(reply))

    def _may_accept(self, header: QuicHeader, data: bytes) -> bool:
        if header.packet_type != QuicPacketType.INITIAL:
            return False
        if len(data) < SMALLEST_MAX_DATAGRAM_SIZE or len(self._cids) >= self._max_connections:
            return False
        handshaking = sum(1 for driver in self._cids if not driver.handshake_complete)
        return handshaking < self._max_handshaking

    def _accept(
        self, header: QuicHeader, data: bytes, addr: Address, nursery: trio.Nursery
    ) -> None:
        quic = WindowedQuicConnection(
            configuration=self._configure(addr),
            original_destination_connection_id=header.destination_cid,
        )
        driver = QuicDriver(
            quic, self._sock, addr, self._counters, keepalive=self._keepalive, on_cid=self._cid
        )
        driver.datagram_received(data, addr)
        if not quic.established:
            return  # its first packet did not decrypt: forget it, nothing was sent
        self._cids[driver] = set()
        self._cid(driver, header.destination_cid, True)
        self._cid(driver, quic.host_cid, True)
        nursery.start_soon(self._run_connection, driver)

    def _cid(self, driver: QuicDriver, cid: bytes, issued: bool) -> None:
        cids = self._cids.get(driver)
        if cids is None:
            return
        if issued:
            self._by_cid[cid] = driver
            cids.add(cid)
        elif self._by_cid.get(cid) is driver:
            del self._by_cid[cid]
            cids.discard(cid)

    def _forget(self, driver: QuicDriver) -> None:
        for cid in self._cids.pop(driver, ()):
            if self._by_cid.get(cid) is driver:
                del self._by_cid[cid]

    async def _run_connection(self, driver: QuicDriver) -> None:
        driver.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(driver.drive)
                with trio.move_on_after(self._handshake_timeout):
                    await driver.wait_connected()
                if driver.handshake_complete and driver.failure is None:
                    await self._on_connection(driver)
                    driver.close_gracefully()
                elif driver.failure is None:
                    driver.kill("handshake timed out")
        finally:
            self._forget(driver)
            with trio.CancelScope(shield=True):
                await driver.send_close_now("server closing")
            driver.finished()


def start_client(
    nursery: trio.Nursery,
    sock: DatagramSocket,
    peer: Address,
    configuration: QuicConfiguration,
    counters: QuicCounters,
    *,
    keepalive: float = KEEPALIVE_INTERVAL,
) -> QuicDriver:
    """Start a client connection to `peer` on `sock` (which it then owns) in `nursery`;
    the handshake is under way on return (`driver.wait_connected()`)."""
    quic = WindowedQuicConnection(configuration=configuration)
    driver = QuicDriver(quic, sock, peer, counters, keepalive=keepalive)
    quic.connect(peer, now=trio.current_time())
    driver.request_transmit()
    driver.started()
    nursery.start_soon(_run_client, driver, sock, counters)
    return driver


async def _run_client(driver: QuicDriver, sock: DatagramSocket, counters: QuicCounters) -> None:
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive_into, driver, sock, counters)
            await driver.drive()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await driver.send_close_now()
            await sock.aclose()
        driver.finished()


async def _receive_into(driver: QuicDriver, sock: DatagramSocket, counters: QuicCounters) -> None:
    for count in itertools.count(1):
        if count % RECEIVE_BATCH == 0:
            await trio.lowlevel.checkpoint()
        try:
            data, addr = await sock.recvfrom()
        except trio.ClosedResourceError:
            return
        except OSError as exc:
            driver.network_error(exc)
            continue
        counters.received(len(data))
        driver.datagram_received(data, addr)
