"""`quic://`: framed messages over QUIC, through our trio driver around aioquic.

A `Connection` is one QUIC connection carrying one framed stream each way; the rpc layer
multiplexes its calls on it by call id (one framed stream measured ~2.7x faster than a QUIC
stream per call). Each node has a TLS identity (`_quic_tls.py`) whose fingerprint the
registry publishes; `connect("host:port?cert_sha256=HEX")` refuses any other certificate.
Without a pin a loopback peer is accepted, any other needs `TRIMICRO_TLS_CA` to verify it.

Datagrams are just under 16 KiB on loopback (aioquic's per-packet cost in Python makes
size the lever: 11x the 64 KiB throughput of 1,200) and 1,200 bytes elsewhere, unless
`quic://?max_datagram_size=N` says otherwise. aioquic 1.7.2 breaks at 16,384 and above.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from collections.abc import Mapping
from functools import partial
from urllib.parse import parse_qsl, urlsplit

import attrs
import trio
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration

from ._address import format_address, parse_address
from ._base import ConnectError, Connection, ConnectionHandler, SessionError
from ._quic_connection import KEEPALIVE_INTERVAL, QuicCounters, QuicDriver
from ._quic_datagram import Address, DatagramNetwork, UdpNetwork, is_loopback
from ._quic_endpoint import QuicServerEndpoint, start_client
from ._quic_tls import TlsIdentity, check_ca_file, fingerprint, generate_identity
from ._quic_tls import identity_from_environment as _identity_from_environment
from ._stream import StreamConnection

__all__ = ["ALPN", "QuicOptions", "QuicStatistics", "QuicTransport"]

log = logging.getLogger("trimicro.session.quic")

ALPN = "trimicro/1"
#: Loopback datagram size: just under 16 KiB, where aioquic 1.7.2's 2-byte length breaks.
LOOPBACK_DATAGRAM_SIZE = 16_000
LARGEST_DATAGRAM_SIZE = 16_383
#: Seconds a dial may take, handshake included (the tunnel's dial timeout too).
DIAL_TIMEOUT = 5.0
#: aioquic's idle timeout; the keepalive PINGs keep a live peer's connection open.
IDLE_TIMEOUT = 60.0
#: Receive window of the framed stream: what a reader that stops reading makes us hold.
#: 1 MiB keeps a 1.5 s round-trip path at ~0.7 MB/s, and is aioquic's default.
STREAM_WINDOW = 1024 * 1024
#: Initial connection window; aioquic doubles it as it is used (the stream window bounds).
CONNECTION_WINDOW = 2 * STREAM_WINDOW

_PIN = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class QuicOptions:
    """Settings of a `QuicTransport`; `from_url` reads `quic://?max_datagram_size=N`."""

    max_datagram_size: int | None = None  # None: 16,000 on loopback, else 1,200
    dial_timeout: float = DIAL_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    keepalive: float = KEEPALIVE_INTERVAL
    alpn: str = ALPN

    @classmethod
    def from_url(cls, url: str) -> QuicOptions:
        query = dict(parse_qsl(urlsplit(url).query))
        unknown = set(query) - {"max_datagram_size"}
        if unknown:
            raise ValueError(f"{url!r}: unknown option {sorted(unknown)[0]!r}")
        size = query.get("max_datagram_size")
        if size is None:
            return cls()
        if (
            not size.isdigit()
            or not SMALLEST_MAX_DATAGRAM_SIZE <= int(size) <= LARGEST_DATAGRAM_SIZE
        ):
            raise ValueError(
                f"{url!r}: max_datagram_size must be {SMALLEST_MAX_DATAGRAM_SIZE}.."
                f"{LARGEST_DATAGRAM_SIZE} (aioquic breaks at 16,384)"
            )
        return cls(max_datagram_size=int(size))


@attrs.frozen
class QuicStatistics:
    """A snapshot of a transport's counters (both its server and its client side)."""

    connections_open: int
    handshakes_completed: int
    handshakes_failed: int
    datagrams_in: int
    datagrams_out: int
    bytes_in: int
    bytes_out: int


class QuicTransport:
    """The `Transport` for `quic://`.

    `network` swaps the real UDP network for another (`trimicro.testing.MemoryNetwork`);
    `identity` replaces the one from `TRIMICRO_TLS_CERT`/`TRIMICRO_TLS_KEY` (or generated).
    Bad TLS variables raise `IdentityError` here, at start, naming the variable.
    """

    scheme = "quic"

    def __init__(
        self,
        options: QuicOptions | None = None,
        *,
        network: DatagramNetwork | None = None,
        identity: TlsIdentity | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.options = options or QuicOptions()
        self._network: DatagramNetwork = network or UdpNetwork()
        self._identity = identity or _identity_from_environment(environ)
        self._ca_file = check_ca_file(environ)
        self._counters = QuicCounters()

    def __repr__(self) -> str:
        return f"<QuicTransport {self._counters.connections_open} connections>"

    @property
    def identity(self) -> TlsIdentity:
        """This node's certificate and key (generated on first use when none is configured)."""
        if self._identity is None:
            self._identity = generate_identity()
        return self._identity

    def node_metadata(self) -> dict[str, str]:
        """Registry metadata for a node serving with this transport: its certificate pin and
        the datagram size it sends (`auto`: 16,000 bytes to loopback peers, 1,200 else)."""
        size = self.options.max_datagram_size
        return {
            "cert_sha256": self.identity.cert_sha256,
            "max_datagram_size": "auto" if size is None else str(size),
        }

    def statistics(self) -> QuicStatistics:
        return QuicStatistics(**attrs.asdict(self._counters))

    # -- server ----------------------------------------------------------------------------

    async def serve(
        self,
        handler: ConnectionHandler,
        address: str,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        host, port = parse_address(address)
        _ = self.identity  # generated now rather than on the first Initial
        sock = await self._network.bind(host, port)
        try:
            bound = _format(sock.local_address)
            endpoint = QuicServerEndpoint(
                sock,
                self._server_configuration,
                partial(self._serve_connection, handler, bound),
                self._counters,
                keepalive=self.options.keepalive,
            )
            task_status.started(bound)
            await endpoint.serve()
        finally:
            with trio.CancelScope(shield=True):
                await sock.aclose()

    async def _serve_connection(
        self, handler: ConnectionHandler, bound: str, driver: QuicDriver
    ) -> None:
        conn = StreamConnection(driver.stream, peer=_format(driver.peer), local=bound)
        try:
            await handler(conn)
        except SessionError as exc:
            # One broken connection must not take the endpoint down with it.
            log.info("QUIC connection from %s ended: %s", conn.peer, exc)
        finally:
            await conn.aclose()

    def _server_configuration(self, peer: Address) -> QuicConfiguration:
        configuration = self._configuration(is_client=False, peer=peer)
        identity = self.identity
        configuration.certificate = identity.certificate
        configuration.private_key = identity.private_key
        configuration.certificate_chain = list(identity.chain)
        return configuration

    # -- client ----------------------------------------------------------------------------

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        target, pin = _split_pin(address)
        try:
            host, port = parse_address(target)
        except ValueError as exc:
            raise ConnectError(f"cannot connect to {address!r}: {exc}") from None
        try:
            sock, peer = await self._network.dial(host, port)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {target}: {exc.strerror or exc}") from None
        try:
            configuration = self._client_configuration(target, host, peer, pin)
        except BaseException:
            with trio.CancelScope(shield=True):
                await sock.aclose()
            raise
        driver = start_client(
            nursery, sock, peer, configuration, self._counters, keepalive=self.options.keepalive
        )
        try:
            await self._handshake(driver, target, pin)
        except BaseException:
            driver.kill("dial abandoned")
            raise
        return StreamConnection(driver.stream, peer=target, local=_format(sock.local_address))

    async def _handshake(self, driver: QuicDriver, target: str, pin: str | None) -> None:
        with trio.move_on_after(self.options.dial_timeout):
            await driver.wait_connected()
        if not driver.handshake_complete or driver.failure is not None:
            timeout = f"no handshake within {self.options.dial_timeout:g} s"
            raise ConnectError(f"cannot connect to {target}: {driver.failure or timeout}")
        if pin is not None:
            actual = fingerprint(driver.quic.peer_certificate)
            if actual != pin:
                driver.kill("certificate does not match the pin")
                raise ConnectError(
                    f"certificate of {target} does not match the registry's cert_sha256 "
                    f"(expected {pin[:16]}…, got {actual[:16]}…)"
                )

    def _client_configuration(
        self, target: str, host: str, peer: Address, pin: str | None
    ) -> QuicConfiguration:
        configuration = self._configuration(is_client=True, peer=peer)
        configuration.server_name = host
        if pin is not None or is_loopback(peer):
            configuration.verify_mode = ssl.CERT_NONE  # the pin is checked after the handshake
        elif self._ca_file is not None:
            configuration.verify_mode = ssl.CERT_REQUIRED
            configuration.load_verify_locations(cafile=self._ca_file)
        else:
            raise ConnectError(
                f"cannot connect to {target}: a QUIC peer off this machine needs its "
                "certificate pinned (?cert_sha256=, from the registry) or TRIMICRO_TLS_CA"
            )
        return configuration

    def _configuration(self, *, is_client: bool, peer: Address) -> QuicConfiguration:
        return QuicConfiguration(
            is_client=is_client,
            alpn_protocols=[self.options.alpn],
            idle_timeout=self.options.idle_timeout,
            max_datagram_size=self._datagram_size(peer),
            max_stream_data=STREAM_WINDOW,
            max_data=CONNECTION_WINDOW,
        )

    def _datagram_size(self, peer: Address) -> int:
        if self.options.max_datagram_size is not None:
            return self.options.max_datagram_size
        return LOOPBACK_DATAGRAM_SIZE if is_loopback(peer) else SMALLEST_MAX_DATAGRAM_SIZE


def _split_pin(address: str) -> tuple[str, str | None]:
    """`"host:port?cert_sha256=HEX"` → `("host:port", "hex")`."""
    target, _, query = address.partition("?")
    pin = dict(parse_qsl(query)).get("cert_sha256")
    if pin is None:
        return target, None
    pin = pin.lower()
    if not _PIN.fullmatch(pin):
        raise ConnectError(f"cannot connect to {target}: cert_sha256 must be 64 hex digits")
    return target, pin


def _format(addr: Address) -> str:
    return format_address(str(addr[0]), int(addr[1]))
