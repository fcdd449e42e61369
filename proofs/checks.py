"""The checks both verifiers share (``credit verify`` and the extract verifier): one function per
check, each failure a class of ``proofs.failures`` naming the fact that failed.

Standard library and ``cryptography`` only, so that worker processes start light and the
offline verifier carries the same code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.clock import naive_utc
from domain.state import stream_of
from keys.registry import PLATFORM, KeyRegistry, KeyRegistryError
from keys.signer import fingerprint
from proofs import envelope, merkle
from proofs.checkpoint import Checkpoint, key_id, parse_checkpoint
from proofs.failures import (
    CheckpointInconsistent,
    CheckpointInvalid,
    KeyNotValid,
    MalformedCheckpoint,
    MalformedEnvelope,
    RegistryInvalid,
    SignatureInvalid,
    VerificationFailure,
)
from proofs.registry_replay import RegistryReplay

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
                   ) -> tuple[KeyRegistry, list[VerificationFailure], str]:
    """Replay key events; return the registry, failures, and a sentence on what was trusted."""
    replay = RegistryReplay()
    for nid, oid, version, topic, state in rows:
        replay.feed(nid, oid, version, topic, state)
    failures = list(replay.failures)
    genesis = replay.genesis_key
    if genesis is None:
        if not replay.registry.is_empty or failures:
            failures.append(RegistryInvalid("the ledger has no valid platform key"))
        return replay.registry, failures, "no platform key in the ledger"
    name = f"platform key {fingerprint(genesis)}"
    if trusted is None:
        return replay.registry, failures, f"{name} (the ledger's own first key; not checked)"
    if genesis not in trusted:
        failures.append(RegistryInvalid(f"the ledger's first {name} is not the trusted platform key"))
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
              ) -> VerificationFailure | None:
        """None when all three checks hold, else the failure."""
        try:
            sealed = envelope.decode(state)
            at = sealed.recorded_at
        except ValueError as exc:
            return MalformedEnvelope(f"stored state is not a signed envelope: {exc}",
                                     nid, oid, version)
        try:
            key = self.registry.check_signing_key(sealed.kid, sealed.actor, at, nid)
        except KeyRegistryError as exc:
            return KeyNotValid(str(exc), nid, oid, version)
        try:
            message = envelope.signed_bytes(oid, version, topic, sealed.actor, sealed.at,
                                            sealed.kid, sealed.payload)
        except ValueError as exc:  # a field no signed bytes can hold: it was never signed
            return SignatureInvalid(f"the event as stored cannot have been signed: {exc}",
                                    nid, oid, version)
        try:
            self._public(key.kid, key.public_key).verify(sealed.signature, message)
        except InvalidSignature:
            return SignatureInvalid(f"signature does not match key {sealed.kid}", nid, oid, version)
        return None

    def check_rows(self, rows: Sequence[Row]) -> list[VerificationFailure]:
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


def check_rows_in_worker(rows: Sequence[Row]) -> list[VerificationFailure]:
    if _worker is None:
        raise RuntimeError("the verify worker was not initialised")
    return _worker.check_rows(rows)


# -- checkpoints: written once, for the store, the extract and a checkpoint listing ----------


PublicKeyOf = Callable[[Checkpoint], bytes]


def registry_key(registry: KeyRegistry, last_nid: int | None = None) -> PublicKeyOf:
    """A checkpoint's key as the key registry has it: a platform key valid at the checkpoint's
    time (and, in a store, not revoked before the last event it covers)."""
    def public_key_of(checkpoint: Checkpoint) -> bytes:
        try:
            return registry.check_signing_key(checkpoint.key_name, PLATFORM,
                                              checkpoint.issued_at, last_nid).public_key
        except KeyRegistryError as exc:
            raise CheckpointInvalid(f"its key: {exc}") from None
    return public_key_of


def trusted_key(trusted: Sequence[bytes]) -> PublicKeyOf:
    """A checkpoint's key among platform keys the verifier was given (by its signed-note id)."""
    def public_key_of(checkpoint: Checkpoint) -> bytes:
        for key in trusted:
            if key_id(checkpoint.key_name, key) == checkpoint.key_id:
                return key
        raise CheckpointInvalid(f"not signed by a trusted platform key (signed as "
                                f"{checkpoint.key_name}, trusted "
                                f"{', '.join(fingerprint(k) for k in trusted)})")
    return public_key_of


def verify_checkpoint(note: str, public_key_of: PublicKeyOf, what: str) -> Checkpoint:
    """Parse a signed checkpoint note and check its signature with the key ``public_key_of``
    names. ``what`` names it in the failure ("checkpoint 12", "the kept checkpoint")."""
    try:
        checkpoint = parse_checkpoint(note)
    except MalformedCheckpoint as exc:
        raise MalformedCheckpoint(f"{what} is not a readable signed note: {exc}") from None
    try:
        public_key = public_key_of(checkpoint)
    except CheckpointInvalid as exc:
        raise CheckpointInvalid(f"{what}: {exc.fact}") from None
    if checkpoint.key_id != key_id(checkpoint.key_name, public_key):
        raise CheckpointInvalid(f"{what}: key id does not match key {checkpoint.key_name}")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            checkpoint.signature, checkpoint.body.encode("utf-8"))
    except InvalidSignature:
        raise CheckpointInvalid(f"{what}: signature does not match key "
                                f"{checkpoint.key_name}") from None
    return checkpoint


def check_extends(previous: Checkpoint, current: Checkpoint, proof: Sequence[bytes],
                  what: str, previous_what: str) -> None:
    """``current`` extends ``previous`` (RFC 9162 consistency), else CheckpointInconsistent."""
    if current.tree_size < previous.tree_size:
        raise CheckpointInconsistent(f"{what} has size {current.tree_size}, smaller than "
                                     f"{previous_what}'s {previous.tree_size}")
    if previous.tree_size == 0:
        return
    try:
        merkle.verify_consistency(previous.tree_size, current.tree_size, previous.root_hash,
                                  current.root_hash, proof)
    except merkle.ProofError as exc:
        raise CheckpointInconsistent(f"{what} is not consistent with {previous_what} (size "
                                     f"{previous.tree_size}): {exc}") from None


def check_stored_checkpoint(registry: KeyRegistry, seq: int, note: str,
                            columns: tuple[Any, ...], recomputed_root: bytes | None,
                            last_nid: int | None, recomputed_chain_root: bytes | None = None
                            ) -> tuple[Checkpoint | None, list[VerificationFailure]]:
    """Checkpoint ``seq`` of a store, and what fails of it (empty when it holds).

    ``columns`` are its stored (tree_size, root_hash, kid, issued_at as naive UTC)."""
    what = f"checkpoint {seq}"
    try:
        checkpoint = parse_checkpoint(note)
    except MalformedCheckpoint as exc:
        return None, [MalformedCheckpoint(f"{what} is not a readable signed note: {exc}",
                                          last_nid)]
    failures: list[VerificationFailure] = []
    issued_naive = naive_utc(checkpoint.issued_at)
    if columns != (checkpoint.tree_size, checkpoint.root_hash, checkpoint.key_name,
                   issued_naive):
        failures.append(CheckpointInvalid(f"{what}: its stored columns differ from its signed "
                                          "note", last_nid))
    try:
        verify_checkpoint(note, registry_key(registry, last_nid), what)
    except CheckpointInvalid as exc:
        return checkpoint, [*failures, CheckpointInvalid(exc.fact, last_nid)]
    size = checkpoint.tree_size
    if recomputed_root is not None and checkpoint.root_hash != recomputed_root:
        failures.append(CheckpointInvalid(
            f"{what} (size {size}): its signed root does not match the root of the stored "
            "events at that size", last_nid))
    if recomputed_chain_root is not None and checkpoint.chain_root != recomputed_chain_root:
        failures.append(CheckpointInvalid(
            f"{what} (size {size}): its signed chain root does not match the chains of the "
            "stored events at that size", last_nid))
    return checkpoint, failures


def check_stored_consistency(previous: Checkpoint, current: Checkpoint, seq: int, prev_seq: int,
                             node: merkle.NodeSource, last_nid: int | None
                             ) -> VerificationFailure | None:
    """Whether checkpoint ``seq`` extends checkpoint ``prev_seq``, proved from stored nodes."""
    try:
        proof = (merkle.consistency_proof(previous.tree_size, current.tree_size, node)
                 if 0 < previous.tree_size <= current.tree_size else [])
        check_extends(previous, current, proof, f"checkpoint {seq}", f"checkpoint {prev_seq}")
    except LookupError as exc:
        return CheckpointInconsistent(f"checkpoint {seq}: no consistency proof with checkpoint "
                                      f"{prev_seq} from the stored tree: {exc}", last_nid)
    except CheckpointInconsistent as exc:
        return CheckpointInconsistent(exc.fact, last_nid)
    return None


def subject_named(state: bytes) -> object:
    """What an event's payload names as its ``subject`` (None if nothing); ValueError if the
    envelope or its payload cannot be read."""
    return payload_subject(envelope.header_fields(state)[3])


def payload_subject(payload: bytes) -> object:
    """A payload's top-level ``subject`` (None if it has none); ValueError if it is not JSON."""
    value = json.loads(payload)
    return value.get("subject") if isinstance(value, dict) else None


# A first event's payload as the ledger writes it: the subject is the second key.
_SUBJECT_AS_WRITTEN = re.compile(rb'\{"originator_topic":"[^"\\]*","subject":"([^"\\]*)"[,}]')


def subject_as_written(payload: bytes) -> bytes | None:
    """The payload's subject read without parsing it, where the parser could not read another:
    with no backslash anywhere every quote delimits a string and no key is spelled with
    escapes, and with ``"subject"`` once there is no second, overriding ``subject`` key. The
    UTF-8 bytes of the value; None where this reading is not certain (then parse)."""
    if b"\\" in payload or payload.count(b'"subject"') != 1:
        return None
    match = _SUBJECT_AS_WRITTEN.match(payload)
    return match[1] if match is not None else None


def check_chain_key(nid: int, oid: str, version: int, topic: str, payload: bytes | None,
                    stream: str, subject: str | None) -> str | None:
    """Whether the log filed an event under the chain its content names: the stream is the
    topic's aggregate class, and a first version's subject is the payload's ``subject``.
    ``payload`` is None when the envelope cannot be read (the envelope check reports it)."""
    kind = stream_of(topic)
    if stream != kind:
        return f"the log files it under {stream!r}, its topic names {kind!r}"
    if version == 1 and payload is not None:
        # Agreeing bytes settle it: were the payload not JSON at all, the parse below would
        # find nothing to report either.
        if subject is not None and subject_as_written(payload) == subject.encode("utf-8"):
            return None
        try:
            named = payload_subject(payload)
        except ValueError:
            return None  # not JSON: the payload is what its signer signed; nothing names a chain
        if isinstance(named, str) and named != subject:
            return f"the log files it under subject {subject!r}, the event names {named!r}"
        if named is None and subject is not None:
            return f"the log files it under subject {subject!r}, the event names none"
    return None
