"""Signed checkpoints in the C2SP formats (tlog-checkpoint inside a signed note).

A checkpoint note::

    <origin>
    <tree size>
    <base64 root hash>
    time <issued at, UTC>
    chains <base64 root of the chain map (proofs.chain_map)>
    <blank line>
    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>

The signature covers the note text: every line above the blank line, each ending in a newline.
The key name is the platform key id (``platform-2026-1``); the key id is
SHA-256(key name || 0x0A || 0x01 || public key)[:4] as C2SP signed-note defines for Ed25519.

Standard library only, apart from the signature check passed in by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from proofs.envelope import format_instant, parse_instant
from proofs.failures import MalformedCheckpoint

SIGNATURE_DASH = "\u2014"
TIME_PREFIX = "time "
CHAINS_PREFIX = "chains "
ED25519_SIGNATURE_TYPE = b"\x01"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    issued_at: datetime
    chain_root: bytes
    key_name: str
    key_id: bytes
    signature: bytes
    body: str

    @property
    def note(self) -> str:
        """The full signed note, as published."""
        return self.body + "\n" + signature_line(self.key_name, self.key_id, self.signature)


def key_id(key_name: str, public_key: bytes) -> bytes:
    """The 4-byte C2SP signed-note key id of an Ed25519 key."""
    return hashlib.sha256(
        key_name.encode("utf-8") + b"\n" + ED25519_SIGNATURE_TYPE + public_key
    ).digest()[:4]


def note_body(origin: str, tree_size: int, root_hash: bytes, issued_at: datetime,
              chain_root: bytes) -> str:
    """The signed text of a checkpoint."""
    if "\n" in origin or not origin:
        raise ValueError("the origin is one non-empty line")
    root = base64.b64encode(root_hash).decode("ascii")
    chains = base64.b64encode(chain_root).decode("ascii")
    return (f"{origin}\n{tree_size}\n{root}\n{TIME_PREFIX}{format_instant(issued_at)}\n"
            f"{CHAINS_PREFIX}{chains}\n")


def signature_line(key_name: str, kid_bytes: bytes, signature: bytes) -> str:
    blob = base64.b64encode(kid_bytes + signature).decode("ascii")
    return f"{SIGNATURE_DASH} {key_name} {blob}\n"


def make_checkpoint(
    origin: str, tree_size: int, root_hash: bytes, issued_at: datetime, chain_root: bytes,
    key_name: str, public_key: bytes, sign: Callable[[bytes], bytes],
) -> Checkpoint:
    """Build and sign a checkpoint with the platform key ``key_name``."""
    body = note_body(origin, tree_size, root_hash, issued_at, chain_root)
    signature = sign(body.encode("utf-8"))
    return Checkpoint(origin, tree_size, root_hash, issued_at, chain_root, key_name,
                      key_id(key_name, public_key), signature, body)


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a signed checkpoint note; raise MalformedCheckpoint naming what is wrong."""
    body, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise MalformedCheckpoint("no blank line between the checkpoint and its signature")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) != 5:
        raise MalformedCheckpoint("a checkpoint has origin, size, root, time and chains lines")
    origin, size_text, root_text, time_line, chains_line = lines
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise MalformedCheckpoint(f"tree size {size_text!r} is not a decimal number")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise MalformedCheckpoint("root hash is not base64") from None
    if len(root_hash) != 32:
        raise MalformedCheckpoint(f"root hash has {len(root_hash)} bytes, not 32")
    if not time_line.startswith(TIME_PREFIX):
        raise MalformedCheckpoint("the fourth line must be 'time <UTC time>'")
    try:
        issued_at = parse_instant(time_line[len(TIME_PREFIX):])
    except ValueError:
        raise MalformedCheckpoint(f"{time_line!r} is not a time") from None
    if not chains_line.startswith(CHAINS_PREFIX):
        raise MalformedCheckpoint("the fifth line must be 'chains <base64 chain map root>'")
    try:
        chain_root = base64.b64decode(chains_line[len(CHAINS_PREFIX):], validate=True)
    except binascii.Error:
        raise MalformedCheckpoint("the chain map root is not base64") from None
    if len(chain_root) != 32:
        raise MalformedCheckpoint(f"the chain map root has {len(chain_root)} bytes, not 32")
    sig_lines = [line for line in signatures.split("\n") if line]
    if len(sig_lines) != 1:
        raise MalformedCheckpoint(f"expected one signature line, found {len(sig_lines)}")
    parts = sig_lines[0].split(" ")
    if len(parts) != 3 or parts[0] != SIGNATURE_DASH:
        raise MalformedCheckpoint("the signature line is not '— <name> <signature>'")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise MalformedCheckpoint("the signature is not base64") from None
    if len(blob) != 4 + 64:
        raise MalformedCheckpoint(f"the signature has {len(blob)} bytes, not 4 + 64")
    return Checkpoint(origin, int(size_text), root_hash, issued_at, chain_root, parts[1], blob[:4],
                      blob[4:], body)
