"""Signing and checking with Ed25519 (pyca/cryptography)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32


class BadSignature(Exception):
    """A signature that does not match the message under the given public key."""


class Signer:
    """One authority key able to sign: ``Signer(kid, private_key).sign(message)``."""

    def __init__(self, kid: str, private_key: Ed25519PrivateKey) -> None:
        self.kid = kid
        self._private_key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self.kid!r})"


def verify(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Check an Ed25519 signature over ``message``; raise BadSignature if it does not match."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise BadSignature("signature does not match") from exc


def public_key_from_pem(pem: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key in a PEM SubjectPublicKeyInfo block."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_to_pem(public_key: bytes) -> bytes:
    """A PEM SubjectPublicKeyInfo block for a raw Ed25519 public key (what openssl reads)."""
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_key: bytes) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def b64(data: bytes) -> str:
    """Standard base64 with padding, the encoding used throughout the ledger's formats."""
    return base64.b64encode(data).decode("ascii")


