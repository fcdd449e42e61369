"""Encrypted PKCS#8 private key files with a key-derivation cost we choose.

pyca/cryptography writes encrypted PKCS#8 with PBKDF2 at 2,048 rounds only; reading accepts any
count. So the file is written here, in the standard form every tool reads (`openssl pkey`):
PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256, a 16-byte random salt and ``iterations`` rounds
(600,000 by default: OWASP's 2023 figure for PBKDF2-HMAC-SHA256), and AES-256-CBC with a random
IV over the unencrypted PKCS#8 DER, PKCS#7-padded.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 1_000

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_SHA256 = "1.2.840.113549.2.9"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _sequence(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _integer(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def encrypt(key: Ed25519PrivateKey, secret: bytes, iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """The key as an ``ENCRYPTED PRIVATE KEY`` PEM."""
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"a key file needs at least {MIN_ITERATIONS} PBKDF2 rounds")
    salt, iv = os.urandom(16), os.urandom(16)
    derived = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt,
                         iterations=iterations).derive(secret)
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    algorithm = _sequence(
        _oid(_PBES2),
        _sequence(
            _sequence(_oid(_PBKDF2), _sequence(_octets(salt), _integer(iterations),
                                                _sequence(_oid(_HMAC_SHA256), b"\x05\x00"))),
            _sequence(_oid(_AES256_CBC), _octets(iv))))
    der = _sequence(algorithm, _octets(encrypted))
    lines = base64.encodebytes(der).decode("ascii").replace("\n", "")
    body = "\n".join(lines[i:i + 64] for i in range(0, len(lines), 64))
    return (f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n"
            "-----END ENCRYPTED PRIVATE KEY-----\n").encode("ascii")
