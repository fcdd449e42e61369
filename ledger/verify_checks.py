"""The checks of ``credit verify`` that need no database: one function per check.

Standard library and ``cryptography`` only, so that worker processes start light and offline
verifiers can reuse the same code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from keys.registry import PLATFORM, KeyRegistry, KeyRegistryError
from keys.signer import BadSignature, fingerprint, verify
from ledger import envelope, merkle
from ledger.checkpoint import Checkpoint, MalformedCheckpoint, key_id, parse_checkpoint
from ledger.registry_replay import Failure, RegistryReplay

# A stored event as the checks see it: notification id, originator id text, version, topic, state.
Row = tuple[int, str, int, str, bytes]


def oid_text(raw: Any) -> str:
    """An originator id as text, from what the driver returns (16 bytes on SQLite, text on
    PostgreSQL, or a UUID)."""
    if isinstance(raw, (bytes, memoryview)):
        h = bytes(raw).hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if isinstance(raw, str) and len(raw) == 36 and raw.islower():
        return raw  # PostgreSQL's own text form of a uuid is already the canonical one
    return str(raw) if isinstance(raw, UUID) else str(UUID(str(raw)))


# -- check 1 ----------------------------------------------------------------------------------


def check_registry(rows: Iterable[Row], trusted: Sequence[bytes] | None
                   ) -> tuple[KeyRegistry, list[Failure], str]:
    """Replay key events; return the registry, failures, and a sentence on what was trusted."""
    replay = RegistryReplay()
    for nid, oid, version, topic, state in rows:
        replay.feed(nid, oid, version, topic, state)
    failures = list(replay.failures)
    genesis = replay.genesis_key
    if genesis is None:
        if not replay.registry.is_empty or failures:
            failures.append(Failure(None, None, None, "the ledger has no valid platform key"))
        return replay.registry, failures, "no platform key in the ledger"
    name = f"platform key {fingerprint(genesis)}"
    if trusted is None:
        return replay.registry, failures, f"{name} (the ledger's own first key; not checked)"
    if genesis not in trusted:
        failures.append(Failure(None, None, None,
                                f"the ledger's first {name} is not the trusted platform key"))
    return replay.registry, failures, f"{name}, the trusted platform key"


# -- checks 2-4 -------------------------------------------------------------------------------


class EventChecker:
    """Envelope, key and signature checks against one registry, with its public keys loaded."""

    def __init__(self, registry: KeyRegistry) -> None:
        self.registry = registry
        self._keys: dict[str, Ed25519PublicKey] = {}

    def _public(self, kid: str, raw: bytes) -> Ed25519PublicKey:
        key = self._keys.get(kid)
        if key is None:
            key = self._keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
        return key

    def check(self, nid: int, oid: str, version: int, topic: str, state: bytes
              ) -> tuple[str, Failure] | None:
        """None when all three checks hold, else (check name, failure)."""
        try:
            sealed = envelope.decode(state)
            at = sealed.recorded_at
        except ValueError as exc:
            return "envelope", Failure(nid, oid, version,
                                       f"stored state is not a signed envelope: {exc}")
        try:
            key = self.registry.check_signing_key(sealed.kid, sealed.actor, at, nid)
        except KeyRegistryError as exc:
            return "key", Failure(nid, oid, version, str(exc))
        message = envelope.signed_bytes(oid, version, topic, sealed.actor, sealed.at, sealed.kid,
                                        sealed.payload)
        try:
            self._public(key.kid, key.public_key).verify(sealed.signature, message)
        except InvalidSignature:
            return "signature", Failure(nid, oid, version,
                                        f"signature does not match key {sealed.kid}")
        return None

    def check_rows(self, rows: Sequence[Row]) -> list[tuple[str, Failure]]:
        out = []
        for row in rows:
            result = self.check(*row)
            if result is not None:
                out.append(result)
        return out


_worker: EventChecker | None = None


def init_worker(registry: KeyRegistry) -> None:
    """Process-pool initializer: each worker keeps one checker."""
    global _worker
    _worker = EventChecker(registry)


def check_rows_in_worker(rows: Sequence[Row]) -> list[tuple[str, Failure]]:
    if _worker is None:
        raise RuntimeError("the verify worker was not initialised")
    return _worker.check_rows(rows)


# -- check 7 ----------------------------------------------------------------------------------


def check_checkpoint(registry: KeyRegistry, seq: int, note: str, columns: tuple[Any, ...],
                     recomputed_root: bytes | None, last_nid: int | None,
                     recomputed_chain_root: bytes | None = None) -> list[str]:
    """Reasons checkpoint ``seq`` fails (empty when it holds).

    ``columns`` are its stored (tree_size, root_hash, kid, issued_at as naive UTC).
    """
    try:
        cp = parse_checkpoint(note)
    except MalformedCheckpoint as exc:
        return [f"checkpoint {seq} is not a readable signed note: {exc}"]
    reasons = []
    issued_naive = cp.issued_at.astimezone(UTC).replace(tzinfo=None)
    if columns != (cp.tree_size, cp.root_hash, cp.key_name, issued_naive):
        reasons.append(f"checkpoint {seq}: its stored columns differ from its signed note")
    try:
        key = registry.check_signing_key(cp.key_name, PLATFORM, cp.issued_at, last_nid)
    except KeyRegistryError as exc:
        return [*reasons, f"checkpoint {seq}: {exc}"]
    if cp.key_id != key_id(cp.key_name, key.public_key):
        reasons.append(f"checkpoint {seq}: key id does not match key {cp.key_name}")
    try:
        verify(key.public_key, cp.signature, cp.body.encode("utf-8"))
    except BadSignature:
        return [*reasons, f"checkpoint {seq}: signature does not match key {cp.key_name}"]
    if recomputed_root is not None and cp.root_hash != recomputed_root:
        reasons.append(
            f"checkpoint {seq} (size {cp.tree_size}): its signed root does not match the root "
            "of the stored events at that size"
        )
    if recomputed_chain_root is not None and cp.chain_root != recomputed_chain_root:
        reasons.append(
            f"checkpoint {seq} (size {cp.tree_size}): its signed chain root does not match the "
            "chains of the stored events at that size"
        )
    return reasons


def check_chain_key(nid: int, oid: str, version: int, topic: str, state: bytes,
                    stream: str, subject: str | None) -> str | None:
    """Whether the log filed an event under the chain its content names: the stream is the
    topic's aggregate class, and a first version's subject is the payload's ``subject``."""
    kind = topic.rsplit(":", 1)[-1].rsplit(".", 1)[0]
    if stream != kind:
        return f"the log files it under {stream!r}, its topic names {kind!r}"
    if version == 1:
        try:
            payload = json.loads(envelope.header_fields(state)[3])
            named = payload.get("subject") if isinstance(payload, dict) else None
        except ValueError:
            return None  # the envelope check reports it
        if isinstance(named, str) and named != subject:
            return f"the log files it under subject {subject!r}, the event names {named!r}"
        if named is None and subject is not None:
            return f"the log files it under subject {subject!r}, the event names none"
    return None


def check_consistency(previous: Checkpoint, current: Checkpoint, seq: int, prev_seq: int,
                      node: merkle.NodeSource) -> str | None:
    """Whether ``current`` extends ``previous``, proved from the stored tree nodes."""
    if current.tree_size < previous.tree_size:
        return (f"checkpoint {seq} has size {current.tree_size}, smaller than checkpoint "
                f"{prev_seq}'s {previous.tree_size}")
    if previous.tree_size == 0:
        return None
    try:
        proof = merkle.consistency_proof(previous.tree_size, current.tree_size, node)
        merkle.verify_consistency(previous.tree_size, current.tree_size, previous.root_hash,
                                  current.root_hash, proof)
    except (merkle.ProofError, LookupError) as exc:
        return f"checkpoint {seq} is not consistent with checkpoint {prev_seq}: {exc}"
    return None
