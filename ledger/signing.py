"""Signing a batch: which key each event is signed with, and the event store that signs batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, Notification, Recording, StoredEvent
from eventsourcing.utils import get_topic

from domain.authorities import PLATFORM
from keys.registry import KeyRegistry, RegisteredKey
from keys.signer import Signer, b64
from keys.store import KeyStore
from ledger.errors import NotInitialised, PrivateKeyMismatch
from ledger.mapper import SigningMapper
from proofs.registry_events import REGISTERED_TOPIC, REGISTRY_TOPICS, registry_fact


class SigningSession:
    """The keys one save signs with: a preview of the registry that learns from each event signed.

    Each event is signed under the registry as it stood *before* that event, so a rotation is
    signed by the key it retires; only the platform's first registration signs itself.
    """

    def __init__(self, registry: KeyRegistry, codes: dict[str, str], keystore: KeyStore) -> None:
        self.registry = registry
        self.codes = codes
        self.keystore = keystore
        # actor -> (signer, start, end): the key choice holds for any time in [start, end)
        self._chosen: dict[str, tuple[Signer, datetime, datetime | None]] = {}

    def signer_for(self, event: DomainEventProtocol[Any], actor: str, at: datetime) -> Signer:
        if self.registry.is_empty:
            if get_topic(type(event)) == REGISTERED_TOPIC and actor == PLATFORM:
                kid = str(event.kid)  # type: ignore[attr-defined]
                signer = self.keystore.signer(kid)
                if b64(signer.public_key) != event.public_key:  # type: ignore[attr-defined]
                    raise PrivateKeyMismatch(kid)
                return signer
            raise NotInitialised()
        chosen = self._chosen.get(actor)
        if chosen is not None and chosen[1] <= at and (chosen[2] is None or at < chosen[2]):
            return chosen[0]
        key = self.registry.key_for_signing(actor, at)
        signer = self.signer(key)
        self._chosen[actor] = (signer, *self.registry.signing_window(actor, key))
        return signer

    def signer(self, key: RegisteredKey) -> Signer:
        signer = self.keystore.signer(key.kid)
        if signer.public_key != key.public_key:
            raise PrivateKeyMismatch(key.kid)
        return signer

    def signed(self, event: DomainEventProtocol[Any], topic: str) -> None:
        if topic not in REGISTRY_TOPICS:
            return
        oid = str(event.originator_id)
        fact = registry_fact(topic, vars(event), self.codes.get(oid), None)
        if fact is not None:
            self.registry.apply(fact)
            self._chosen.clear()
            if get_topic(type(event)) == REGISTERED_TOPIC:
                self.codes[oid] = str(event.code)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Presigned:
    """Events signed ahead of their save (while an earlier batch is written), and the key and
    policy log position their keys were chosen at: saved as they are only if the log has no
    key or policy event after it, else signed again."""

    events: Sequence[DomainEventProtocol[UUID]]
    stored: Sequence[StoredEvent]
    seen: int


class SigningEventStore(EventStore[UUID]):
    """Signs a whole batch at once (see SigningMapper.to_stored_events)."""

    mapper: SigningMapper

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], *,
        presigned: Presigned | None = None, **kwargs: Any
    ) -> list[Recording[UUID]]:
        """Sign and store ``domain_events``, followed by the already signed ``presigned``
        ones, in one transaction."""
        stored_events = self.mapper.to_stored_events(domain_events)
        if presigned is not None:
            domain_events = [*domain_events, *presigned.events]
            stored_events.extend(presigned.stored)
        notification_ids = self.recorder.insert_events(stored_events, **kwargs) or []
        return [
            Recording(event, Notification(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=stored.state,
                id=nid,
            ))
            for event, stored, nid in zip(domain_events, stored_events, notification_ids,
                                          strict=True)
        ]
