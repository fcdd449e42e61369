"""Witness cosignatures in the C2SP tlog-cosignature/v1 Ed25519 format
(https://c2sp.org/tlog-cosignature): a signature line added to a checkpoint note by a witness.

    signed message = "cosignature/v1\\n" "time <POSIX seconds>\\n" <the checkpoint's note body>
    key id         = SHA-256(<witness name> || 0x0A || 0x04 || 32-byte public key)[:4]
    line           = "— <witness name> " base64(key id || 8-byte big-endian time || signature)

A v1 cosignature states that, at that time, the checkpoint's tree was the largest consistent one
the witness had seen for the origin. Standard library and ``cryptography`` only: the offline
verifier checks cosignatures with this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DASH = "\u2014"
COSIGNATURE_TYPE = b"\x04"
HEADER = "cosignature/v1\n"


class CosignatureInvalid(ValueError):
    """A cosignature line that is not the named witness's, or does not verify."""


@dataclass(frozen=True)
class Cosignature:
    name: str
    timestamp: int  # POSIX seconds
    line: str  # the signature line, newline-terminated


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + COSIGNATURE_TYPE + public_key).digest()[:4]


def signed_message(body: str, timestamp: int) -> bytes:
    """What a witness signs: the header, the time line and the note body (its final newline
    included, no signature line)."""
    if not body.endswith("\n"):
        raise ValueError("a note body ends with a newline")
    return f"{HEADER}time {timestamp}\n{body}".encode()


def cosign(name: str, public_key: bytes, sign: Callable[[bytes], bytes], body: str,
           timestamp: int) -> Cosignature:
    if not 0 < timestamp < 2**63:
        raise ValueError("a cosignature's time is a positive POSIX timestamp")
    signature = sign(signed_message(body, timestamp))
    blob = cosigner_key_id(name, public_key) + timestamp.to_bytes(8, "big") + signature
    return Cosignature(name, timestamp,
                       f"{DASH} {name} {base64.b64encode(blob).decode('ascii')}\n")


def split_note(note: str) -> tuple[str, list[str]]:
    """(body with its final newline, signature lines) of a signed note."""
    body, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise ValueError("no blank line between the note's text and its signatures")
    return body + "\n", [line for line in signatures.split("\n") if line]


def verify_cosignature(line: str, name: str, public_key: bytes, body: str) -> Cosignature:
    """The cosignature in ``line`` by witness ``name`` over ``body``, or CosignatureInvalid
    naming what is wrong."""
    parts = line.rstrip("\n").split(" ")
    if len(parts) != 3 or parts[0] != DASH:
        raise CosignatureInvalid(f"not a signature line: {line[:60]!r}")
    if parts[1] != name:
        raise CosignatureInvalid(f"signed by {parts[1]!r}, not witness {name!r}")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise CosignatureInvalid(f"witness {name}: the signature is not base64") from None
    if len(blob) != 4 + 8 + 64:
        raise CosignatureInvalid(f"witness {name}: {len(blob)} bytes, not 4 + 8 + 64")
    if blob[:4] != cosigner_key_id(name, public_key):
        raise CosignatureInvalid(f"witness {name}: its key id is not the trusted key's")
    timestamp = int.from_bytes(blob[4:12], "big")
    if not 0 < timestamp < 2**63:
        raise CosignatureInvalid(f"witness {name}: no time")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            blob[12:], signed_message(body, timestamp))
    except InvalidSignature:
        raise CosignatureInvalid(f"witness {name}: the cosignature does not verify over this "
                                 "checkpoint") from None
    return Cosignature(name, timestamp, line if line.endswith("\n") else line + "\n")
