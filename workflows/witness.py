"""A witness (C2SP tlog-witness, https://c2sp.org/tlog-witness): an independent party — the
intermediate court, the discipline commission — with its own key and its own state, that
cosigns a log's checkpoint only when it extends the last one it cosigned for that origin.

``add_checkpoint`` takes the request body of ``POST /add-checkpoint`` (an ``old <size>`` line,
the consistency proof's hashes in base64, a blank line, the signed checkpoint) and answers as
the spec says: 200 with the cosignature line; 400 a malformed request or an old size above the
checkpoint's; 403 no valid signature by a trusted log key; 404 an origin it does not witness;
409 an old size that is not the size it last cosigned (the body is that size); 422 a proof that
does not verify, a different root at the same size, or a size-0 tree whose root is not the
empty tree's. Checking the old size and recording the new checkpoint happen under one lock of
the state file, so two requests cannot roll it back.

The state is a JSON file {origin: {"size", "root"}} replaced whole (write, fsync, rename)."""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keys.signer import public_key_to_pem
from proofs import merkle
from proofs.checkpoint import key_id
from proofs.cosignature import DASH, cosign, split_note


def make_key_file(path: Path) -> bytes:
    """A new witness key written to ``path`` (PEM, mode 0600; never over an existing file);
    returns its public key as PEM, for the platform and for verifiers."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return public_key_to_pem(key.public_key().public_bytes_raw())


def read_key_file(path: Path) -> Ed25519PrivateKey:
    """The witness key in ``path``; ValueError naming the file if it is not one."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a witness key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    def __init__(self, name: str, private_key: Ed25519PrivateKey, origin: str,
                 log_keys: Sequence[bytes], state_path: Path) -> None:
        self.name = name
        self.private_key = private_key
        self.public_key = private_key.public_key().public_bytes_raw()
        self.origin = origin
        self.log_keys = list(log_keys)
        self.state_path = state_path
        self._lock = threading.Lock()

    # -- the state ------------------------------------------------------------------------------

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """The state, locked against every other request and process, written back on exit."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.state_path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state: dict[str, Any] = (json.loads(self.state_path.read_text("utf-8"))
                                         if self.state_path.exists() else {})
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    temporary = self.state_path.with_suffix(".tmp")
                    with open(temporary, "w", encoding="utf-8") as out:
                        json.dump(state, out, sort_keys=True)
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(temporary, self.state_path)  # persisted before the answer
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def latest(self) -> tuple[int, bytes] | None:
        with self._state() as state:
            found = state.get(self.origin)
        return None if found is None else (int(found["size"]), base64.b64decode(found["root"]))

    # -- add-checkpoint -------------------------------------------------------------------------

    def add_checkpoint(self, request: bytes) -> Answer:
        try:
            old_line, proof_text, note = split_request(request)
            if not old_line.startswith("old ") or not _decimal(old_line[4:]):
                return Answer(400, "the first line is 'old <size>'\n")
            old_size = int(old_line[4:])
            proof_lines = [line for line in proof_text.split("\n") if line] if proof_text else []
            if len(proof_lines) > 63:
                return Answer(400, "more than 63 consistency proof lines\n")
            proof = [base64.b64decode(line, validate=True) for line in proof_lines]
            body, signatures = split_note(note)
            lines = body.split("\n")
            origin, size_text, root_text = lines[0], lines[1], lines[2]
            if not _decimal(size_text):
                return Answer(400, "the checkpoint's size is not a decimal\n")
            size, root = int(size_text), base64.b64decode(root_text, validate=True)
        except (UnicodeDecodeError, ValueError, IndexError, binascii.Error):
            return Answer(400, "not an add-checkpoint request\n")
        if origin != self.origin:
            return Answer(404, f"this witness does not witness {origin!r}\n")
        refused = self._check_signature(body, signatures)
        if refused is not None:
            return refused
        if old_size > size:
            return Answer(400, f"old size {old_size} is above the checkpoint's {size}\n")
        if len(root) != 32 or any(len(h) != 32 for h in proof):
            return Answer(400, "hashes are 32 bytes\n")
        with self._state() as state:
            held = state.get(origin)
            held_size = int(held["size"]) if held else 0
            if old_size != held_size:
                return Answer(409, f"{held_size}\n", "text/x.tlog.size")
            if size == 0 and root != merkle.EMPTY_ROOT:
                return Answer(422, "a tree of size 0 has the empty tree's root\n")
            if old_size == 0:
                if proof:
                    return Answer(422, "no proof is needed from the empty tree\n")
            elif held is not None:
                held_root = base64.b64decode(held["root"])
                if old_size == size:
                    if root != held_root:
                        return Answer(422, "the same size with another root: a fork\n")
                else:
                    try:
                        merkle.verify_consistency(old_size, size, held_root, root, proof)
                    except merkle.ProofError as exc:
                        return Answer(422, f"not consistent with the checkpoint of size "
                                           f"{old_size} it cosigned: {exc}\n")
            state[origin] = {"size": size, "root": base64.b64encode(root).decode("ascii")}
            cosigned = cosign(self.name, self.public_key, self.private_key.sign, body,
                              int(time.time()))
        return Answer(200, cosigned.line)

    def _check_signature(self, body: str, signatures: list[str]) -> Answer | None:
        """None if a trusted log key signed the note; else the 403 (unknown keys ignored)."""
        signed = False
        for line in signatures:
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != DASH:
                continue
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except binascii.Error:
                continue
            for key in self.log_keys:
                if blob[:4] != key_id(parts[1], key):
                    continue
                try:
                    Ed25519PublicKey.from_public_bytes(key).verify(blob[4:], body.encode())
                except InvalidSignature:
                    return Answer(403, f"the signature by {parts[1]} does not verify\n")
                signed = True
        return None if signed else Answer(403, "no signature by a key this witness trusts\n")


def split_request(request: bytes) -> tuple[str, str, str]:
    """(old size line, proof lines, checkpoint note) of an add-checkpoint body; ValueError
    (UnicodeDecodeError included) if it has not that shape."""
    text = request.decode("utf-8")
    old_line, rest = text.split("\n", 1)
    if rest.startswith("\n"):
        return old_line, "", rest[1:]
    proof_text, note = rest.split("\n\n", 1)
    return old_line, proof_text, note


def request_note(request: bytes) -> str:
    """The checkpoint note of an add-checkpoint body."""
    return split_request(request)[2]


def _decimal(text: str) -> bool:
    return text.isdigit() and text.isascii() and (text == "0" or not text.startswith("0"))
