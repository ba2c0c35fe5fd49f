"""Peer authentication with a network token (sans-io).

Each end of a link sends a fresh nonce in its `connect`; then each proves it knows the token
with HMAC-SHA256(token, transcript), where the transcript binds the prover's role, both
nonces and both TLS certificate fingerprints as that end sees them. A proof is never valid
in the other direction (the role is in it), never on another link (the nonces are fresh), and
never through a relay that terminates TLS with another certificate (the fingerprints differ).
The token itself never crosses the wire. QUIC has no client certificates here (aioquic), so
the dialler's fingerprint is empty on both sides; the listener's is its certificate's.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["proof", "verify"]

_LABEL = b"trimicro-tunnel-auth/1"


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _transcript(
    prover_dialled: bool,
    dialler_nonce: bytes,
    listener_nonce: bytes,
    dialler_fp: str,
    listener_fp: str,
) -> bytes:
    role = b"D" if prover_dialled else b"L"
    parts = (dialler_nonce, listener_nonce, dialler_fp.encode(), listener_fp.encode())
    return _LABEL + role + b"".join(_field(p) for p in parts)


def proof(
    token: str,
    *,
    prover_dialled: bool,
    dialler_nonce: bytes,
    listener_nonce: bytes,
    dialler_fp: str,
    listener_fp: str,
) -> bytes:
    message = _transcript(prover_dialled, dialler_nonce, listener_nonce, dialler_fp, listener_fp)
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


def verify(expected: bytes, received: bytes) -> bool:
    return hmac.compare_digest(expected, received)
