"""A node's TLS identity for QUIC, and how a client decides to trust a server.

Each node serves with the certificate in `TRIMICRO_TLS_CERT`/`TRIMICRO_TLS_KEY`, or with a
self-signed one generated at start (EC P-256: about a millisecond). The SHA-256 of its DER
certificate, lowercase hex, is published in the registry as `cert_sha256`; a client given
that pin refuses any other certificate, so the registry entry pins the node and no CA is
needed. Certificate validity is the one wall-clock fact here: TLS dates are calendar dates.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "GENERATED_VALIDITY",
    "IdentityError",
    "TlsIdentity",
    "check_ca_file",
    "fingerprint",
    "generate_identity",
    "identity_from_environment",
]

#: Validity of a generated certificate: nodes restart far more often than this.
GENERATED_VALIDITY = datetime.timedelta(days=30)
#: Back-dating of a generated certificate, for peers whose clocks run a little behind.
CLOCK_SKEW = datetime.timedelta(hours=1)


class IdentityError(ValueError):
    """A configured certificate, key or CA cannot be used; the message names the variable."""


@attrs.frozen
class TlsIdentity:
    """A certificate (with any intermediates) and its private key."""

    certificate: x509.Certificate
    private_key: Any  # whatever cryptography loaded: EC, RSA or Ed25519
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def cert_sha256(self) -> str:
        return fingerprint(self.certificate)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lowercase hex (the registry's `cert_sha256`)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def generate_identity(hostname: str | None = None) -> TlsIdentity:
    """A fresh self-signed EC P-256 certificate for `hostname` (default: this host's name)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = hostname or socket.gethostname()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + GENERATED_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TlsIdentity(certificate, key)


def identity_from_environment(env: Mapping[str, str] = os.environ) -> TlsIdentity | None:
    """The identity named by `TRIMICRO_TLS_CERT`/`TRIMICRO_TLS_KEY`, None when neither is set.
    Raises `IdentityError` naming the variable when one is missing, unreadable or not PEM."""
    cert_path, key_path = env.get("TRIMICRO_TLS_CERT"), env.get("TRIMICRO_TLS_KEY")
    if not cert_path and not key_path:
        return None
    if not cert_path or not key_path:
        missing = "TRIMICRO_TLS_KEY" if cert_path else "TRIMICRO_TLS_CERT"
        raise IdentityError(f"{missing} is not set (the certificate and key go together)")
    certificates = _load_certificates("TRIMICRO_TLS_CERT", cert_path)
    key = _load_key("TRIMICRO_TLS_KEY", key_path)
    return TlsIdentity(certificates[0], key, tuple(certificates[1:]))


def check_ca_file(env: Mapping[str, str] = os.environ) -> str | None:
    """The path in `TRIMICRO_TLS_CA` once checked to hold PEM certificates, or None."""
    path = env.get("TRIMICRO_TLS_CA")
    if path:
        _load_certificates("TRIMICRO_TLS_CA", path)
    return path or None


def _read(variable: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise IdentityError(f"{variable}={path!r}: {exc.strerror or exc}") from None


def _load_certificates(variable: str, path: str) -> list[x509.Certificate]:
    data = _read(variable, path)  # outside the try: IdentityError is a ValueError too
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise IdentityError(f"{variable}={path!r}: no PEM certificate in the file") from None
    return certificates


def _load_key(variable: str, path: str) -> Any:
    data = _read(variable, path)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{variable}={path!r}: not an unencrypted PEM key ({exc})") from None
