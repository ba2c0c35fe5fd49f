"""QuicTransport: the conformance suite (real loopback UDP and virtual time), trio's own stream
checks on the QUIC byte stream, TLS identity and pinning, options and statistics."""

from __future__ import annotations

import datetime
import ipaddress
import itertools

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trimicro.session import ConnectError, Connection, ConnectionClosed
from trimicro.session._quic_stream import QuicByteStream
from trimicro.session._quic_tls import IdentityError, TlsIdentity, fingerprint, generate_identity
from trimicro.session._quic_transport import QuicOptions, QuicTransport
from trimicro.testing import CHECKS
from trimicro.testing._paths import MemoryNetwork, open_memory_network

IDENTITY = generate_identity("test-node")


async def echo(conn: Connection) -> None:
    try:
        while True:
            await conn.send(await conn.receive())
    except ConnectionClosed:
        pass


# -- conformance ----------------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance_over_loopback_udp(check) -> None:
    with trio.fail_after(20):
        await check(QuicTransport(identity=IDENTITY), "127.0.0.1:0")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance_in_virtual_time(check, autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_network() as net:
        # One host named like loopback: no pin needed, 16,000-byte datagrams.
        transport = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
        await check(transport, "127.0.0.1:0")


# -- trio's generic stream checks on QuicByteStream -----------------------------------------


def _stream(conn: Connection) -> QuicByteStream:
    stream = conn._stream  # type: ignore[attr-defined]
    assert isinstance(stream, QuicByteStream)
    return stream


async def _stream_pair_maker(nursery: trio.Nursery, net: MemoryNetwork):
    """A maker of (client, server) QuicByteStream pairs, one QUIC connection per pair."""
    server = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
    client = QuicTransport(network=net.host("127.0.0.1"))
    accepted_send, accepted = trio.open_memory_channel[QuicByteStream](10)

    async def handler(conn: Connection) -> None:
        await accepted_send.send(_stream(conn))
        await trio.sleep_forever()  # the checks close the streams; the test ends the rest

    bound = await nursery.start(server.serve, handler, "127.0.0.1:0")

    async def make() -> tuple[QuicByteStream, QuicByteStream]:
        conn = await client.connect(nursery, bound)
        return _stream(conn), await accepted.receive()

    return make


async def test_byte_stream_passes_trio_stream_checks(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = MemoryNetwork()
    nursery.start_soon(net.run)
    make = await _stream_pair_maker(nursery, net)
    await trio.testing.check_half_closeable_stream(make, None)  # includes check_two_way_stream
    nursery.cancel_scope.cancel()


# -- pinning and trust ----------------------------------------------------------------------


async def test_pin_mismatch_is_refused_with_a_clear_error(nursery: trio.Nursery) -> None:
    server = QuicTransport(identity=IDENTITY)
    client = QuicTransport()
    bound = await nursery.start(server.serve, echo, "127.0.0.1:0")
    pinned = await client.connect(nursery, f"{bound}?cert_sha256={IDENTITY.cert_sha256.upper()}")
    await pinned.send({"pinned": True})
    assert await pinned.receive() == {"pinned": True}
    await pinned.aclose()
    wrong = "ab12" + "0" * 60
    expected = (
        f"certificate of {bound} does not match the registry's cert_sha256 "
        f"\\(expected {wrong[:16]}…, got {IDENTITY.cert_sha256[:16]}…\\)"
    )
    with pytest.raises(ConnectError, match=expected):
        await client.connect(nursery, f"{bound}?cert_sha256={wrong}")
    with pytest.raises(ConnectError, match="64 hex digits"):
        await client.connect(nursery, f"{bound}?cert_sha256=abc")
    nursery.cancel_scope.cancel()


async def test_a_peer_off_this_machine_needs_a_pin_or_a_ca(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = MemoryNetwork()
    nursery.start_soon(net.run)
    server = QuicTransport(network=net.host("10.0.0.1"), identity=IDENTITY)
    client = QuicTransport(network=net.host("10.0.0.2"), environ={})
    bound = await nursery.start(server.serve, echo, "10.0.0.1:0")
    with pytest.raises(ConnectError, match=r"pinned .* or TRIMICRO_TLS_CA"):
        await client.connect(nursery, bound)
    conn = await client.connect(
        nursery, f"{bound}?cert_sha256={server.node_metadata()['cert_sha256']}"
    )
    await conn.send({"over": "1200-byte datagrams"})
    assert await conn.receive() == {"over": "1200-byte datagrams"}
    nursery.cancel_scope.cancel()


def _ca_and_leaf(tmp_path, ip: str) -> tuple[TlsIdentity, str]:
    """A CA (PEM file) and a leaf identity for `ip` signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trimicro test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return TlsIdentity(leaf, key), str(path)


async def test_trimicro_tls_ca_verifies_an_unpinned_peer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, tmp_path
) -> None:
    net = MemoryNetwork()
    nursery.start_soon(net.run)
    leaf, ca_file = _ca_and_leaf(tmp_path, "10.0.0.1")
    signed = QuicTransport(network=net.host("10.0.0.1"), identity=leaf)
    self_signed = QuicTransport(network=net.host("10.0.0.3"), identity=IDENTITY)
    client = QuicTransport(network=net.host("10.0.0.2"), environ={"TRIMICRO_TLS_CA": ca_file})
    good = await nursery.start(signed.serve, echo, "10.0.0.1:0")
    bad = await nursery.start(self_signed.serve, echo, "10.0.0.3:0")
    conn = await client.connect(nursery, good)
    await conn.send({"verified": True})
    assert await conn.receive() == {"verified": True}
    with pytest.raises(ConnectError, match=r"cannot connect to 10\.0\.0\.3"):
        await client.connect(nursery, bad)
    nursery.cancel_scope.cancel()


# -- identity from the environment ----------------------------------------------------------


def _write_identity(tmp_path, identity: TlsIdentity) -> dict[str, str]:
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.write_bytes(identity.certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"TRIMICRO_TLS_CERT": str(cert), "TRIMICRO_TLS_KEY": str(key)}


def test_identity_comes_from_trimicro_tls_cert_and_key(tmp_path) -> None:
    env = _write_identity(tmp_path, IDENTITY)
    transport = QuicTransport(environ=env)
    assert transport.node_metadata() == {
        "cert_sha256": IDENTITY.cert_sha256,
        "max_datagram_size": "auto",
    }


def test_the_datagram_size_is_published() -> None:
    """DESIGN.md §5: which datagram size a node sends is in its registry metadata."""
    fixed = QuicTransport(QuicOptions(max_datagram_size=1400), identity=IDENTITY)
    assert fixed.node_metadata()["max_datagram_size"] == "1400"
    assert QuicTransport(identity=IDENTITY).node_metadata()["max_datagram_size"] == "auto"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TRIMICRO_TLS_CERT": "/nonexistent/cert.pem", "TRIMICRO_TLS_KEY": "/x"}, "TLS_CERT"),
        ({"TRIMICRO_TLS_CERT": "/etc/hostname"}, "TRIMICRO_TLS_KEY is not set"),
        ({"TRIMICRO_TLS_KEY": "/etc/hostname"}, "TRIMICRO_TLS_CERT is not set"),
        ({"TRIMICRO_TLS_CA": "/nonexistent/ca.pem"}, "TRIMICRO_TLS_CA="),
    ],
)
def test_bad_tls_variables_fail_at_start_naming_the_variable(env, variable) -> None:
    with pytest.raises(IdentityError, match=variable):
        QuicTransport(environ=env)


def test_a_key_file_that_is_not_a_key_is_named(tmp_path) -> None:
    env = _write_identity(tmp_path, IDENTITY)
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(IdentityError, match=r"TRIMICRO_TLS_KEY=.*not an unencrypted PEM key"):
        QuicTransport(environ=env)


def test_generated_identity_is_short_lived_p256_and_fingerprinted() -> None:
    identity = generate_identity("node-a")
    certificate = identity.certificate
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity <= datetime.timedelta(days=31)
    assert isinstance(identity.private_key.curve, ec.SECP256R1)
    assert certificate.subject.rfc4514_string() == "CN=node-a"
    assert identity.cert_sha256 == fingerprint(certificate)
    assert len(identity.cert_sha256) == 64 and identity.cert_sha256 == identity.cert_sha256.lower()


# -- options and statistics -----------------------------------------------------------------


@pytest.mark.parametrize("url", ["quic://?max_datagram_size=16384", "quic://?max_datagram_size=900",
                                 "quic://?max_datagram_size=x", "quic://?mtu=1500"])  # fmt: skip
def test_bad_url_options_are_refused(url) -> None:
    with pytest.raises(ValueError, match=r"max_datagram_size|unknown option"):
        QuicOptions.from_url(url)


def test_datagram_size_is_large_on_loopback_only() -> None:
    assert QuicOptions.from_url("quic://").max_datagram_size is None
    assert QuicOptions.from_url("quic://?max_datagram_size=9000").max_datagram_size == 9000
    transport = QuicTransport(identity=IDENTITY)
    assert transport._datagram_size(("127.0.0.1", 1)) == 16_000
    assert transport._datagram_size(("::1", 1, 0, 0)) == 16_000
    assert transport._datagram_size(("192.0.2.1", 1)) == 1_200


async def test_statistics_count_connections_handshakes_and_datagrams(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    net = MemoryNetwork()
    nursery.start_soon(net.run)
    server = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
    client = QuicTransport(network=net.host("127.0.0.2"))
    bound = await nursery.start(server.serve, echo, "127.0.0.1:0")
    conn = await client.connect(nursery, bound)
    await conn.send({"x": 1})
    await conn.receive()
    stats = client.statistics()
    assert (stats.connections_open, stats.handshakes_completed, stats.handshakes_failed) == (
        1,
        1,
        0,
    )
    assert stats.datagrams_out > 0 and stats.bytes_in > 0
    await conn.aclose()
    await trio.sleep(1)
    assert client.statistics().connections_open == 0
    assert server.statistics().connections_open == 0
    assert server.statistics().handshakes_completed == 1
    nursery.cancel_scope.cancel()


_ports = itertools.count()
