"""Replaying the key registry from stored key events, checking each one as it is applied.

Each key event must be signed by a platform key that was valid *before* the event (so a new key is
authorised by the old one), except the very first: the platform's registration, which carries the
platform's first key and is signed by it (the trust anchor; ``credit verify`` compares it with the
platform public key it is told to trust).

Standard library and ``cryptography`` only (through ``keys.signer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from keys.registry import (
    PLATFORM,
    AuthorityRegisteredFact,
    KeyRegistry,
    KeyRegistryError,
)
from keys.signer import BadSignature, verify
from proofs import envelope
from proofs.failures import MalformedKeyEvent, RegistryInvalid, VerificationFailure
from proofs.registry_events import registry_fact


@dataclass
class RegistryReplay:
    """Feeds key events in log order into a KeyRegistry, keeping only those that verify."""

    registry: KeyRegistry = field(default_factory=KeyRegistry)
    codes: dict[str, str] = field(default_factory=dict)  # authority aggregate id -> code
    failures: list[VerificationFailure] = field(default_factory=list)
    genesis_key: bytes | None = None

    def feed(self, notification_id: int, originator_id: UUID | str, version: int, topic: str,
             state: bytes) -> None:
        """Check one stored key event and, if it holds, apply it to the registry."""
        oid = str(originator_id)

        def fail(reason: str, kind: type[VerificationFailure] = RegistryInvalid) -> None:
            self.failures.append(kind(reason, notification_id, oid, version))

        try:
            sealed = envelope.decode(state)
            payload = envelope.decode_payload(sealed.payload)
            at = sealed.recorded_at
        except ValueError as exc:
            fail(f"key event is not a readable signed envelope: {exc}", MalformedKeyEvent)
            return
        try:
            fact = registry_fact(topic, payload, self.codes.get(oid), notification_id)
        except (KeyError, ValueError) as exc:
            fail(f"malformed key event: {exc}", MalformedKeyEvent)
            return
        if fact is None:
            return
        if sealed.actor != PLATFORM:
            fail(f"key events are recorded by the platform, not by {sealed.actor!r}")
            return
        if self.registry.is_empty:
            if not (isinstance(fact, AuthorityRegisteredFact) and fact.code == PLATFORM
                    and sealed.kid == fact.kid):
                fail("the first key event must register the platform, signed by its own key")
                return
            public_key = fact.public_key
        else:
            try:
                public_key = self.registry.check_signing_key(
                    sealed.kid, PLATFORM, at, notification_id).public_key
            except KeyRegistryError as exc:
                fail(str(exc))
                return
        message = envelope.signed_bytes(originator_id, version, topic, sealed.actor, sealed.at,
                                        sealed.kid, sealed.payload)
        try:
            verify(public_key, sealed.signature, message)
        except BadSignature:
            fail(f"signature does not match key {sealed.kid}")
            return
        try:
            self.registry.apply(fact)
        except KeyRegistryError as exc:
            fail(str(exc))
            return
        if isinstance(fact, AuthorityRegisteredFact):
            self.codes[oid] = fact.code
            if fact.code == PLATFORM:
                self.genesis_key = fact.public_key
