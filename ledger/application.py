"""The ledger application: commands in, signed events out, every save checkpointed.

It wires eventsourcing's Application to the signing mapper, the ledger recorder and the key
registry. Commands are thin: the rules live in ``domain``; keys and signatures in ``keys``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    JSONTranscoder,
    Notification,
    Recording,
)
from eventsourcing.utils import get_topic
from sqlalchemy import func, select

from domain import clock
from domain.authorities import (
    PLATFORM,
    Authority,
    AuthorityProfile,
    authority_id,
)
from domain.base import LedgerAggregate, effective_at
from domain.identifiers import SubjectRef
from domain.records import CreditRecord
from keys.registry import KeyRegistry, RegisteredKey, UnknownAuthority
from keys.signer import Signer, b64
from keys.store import KeyStore
from ledger import tables
from ledger.checkpoint import Checkpoint, make_checkpoint
from ledger.mapper import DateAsISO, SigningMapper
from ledger.recorder import LedgerCorrupted, LedgerRecorder, LogEntry
from ledger.registry_events import REGISTERED_TOPIC, REGISTRY_TOPICS, registry_fact
from ledger.registry_replay import RegistryReplay
from ledger.settings import Settings
from ledger.storage import prepare_database

EVENTS_TABLE = "credit_events"


class LedgerError(Exception):
    """A command the ledger refuses; nothing was written."""


class AlreadyInitialised(LedgerError):
    pass


class NotInitialised(LedgerError):
    def __init__(self) -> None:
        super().__init__("the ledger has no platform key yet: run `credit init` first")


class AuthorityAlreadyRegistered(LedgerError):
    def __init__(self, code: str) -> None:
        super().__init__(f"authority {code!r} is already registered")


class RecordAlreadySubmitted(LedgerError):
    pass


class RecordNotFound(LedgerError):
    def __init__(self, record_id: UUID) -> None:
        super().__init__(f"no credit record {record_id}")


class PrivateKeyMismatch(LedgerError):
    def __init__(self, kid: str) -> None:
        super().__init__(f"the private key file of {kid} does not match its registered public key")


@dataclass(frozen=True)
class RecordSubmission:
    """One record a department submits (the arguments of CreditRecord.submit)."""

    actor: str
    subject: SubjectRef
    item_code: str
    decision_number: str
    decision_date: date
    summary: str
    details: dict[str, Any] | None = None


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


class SigningEventStore(EventStore[UUID]):
    """Signs a whole batch at once (see SigningMapper.to_stored_events)."""

    mapper: SigningMapper

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        stored_events = self.mapper.to_stored_events(domain_events)
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


class CreditLedger(Application[UUID]):
    """The signed, append-only credit ledger."""

    name = "credit"

    def __init__(self, settings: Settings, keystore: KeyStore | None = None) -> None:
        self.settings = settings
        self.keystore = keystore or KeyStore(settings.keys_dir, settings.passphrase)
        self._replay = RegistryReplay()
        self._registry_position = -1
        self._signing: SigningSession | None = None
        self._write_lock = threading.Lock()
        super().__init__(env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": prepare_database(settings.database_url),
            "CREATE_TABLE": "y",
        })
        self.recorder.checkpoint_signer = self._sign_checkpoint
        self.refresh_registry()

    # -- wiring -------------------------------------------------------------------------------

    recorder: LedgerRecorder
    mapper: SigningMapper

    def construct_mapper(self) -> SigningMapper:
        return SigningMapper(self.construct_transcoder())

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def construct_recorder(self) -> LedgerRecorder:
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        recorder = LedgerRecorder(datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder

    @property
    def engine(self) -> Any:
        return self.recorder.datastore.engine

    @property
    def registry(self) -> KeyRegistry:
        return self._replay.registry

    def close(self) -> None:
        super().close()
        if self.engine is not None:
            self.engine.dispose()

    # -- saving -------------------------------------------------------------------------------

    def construct_event_store(self) -> EventStore[UUID]:
        return SigningEventStore(mapper=self.mapper, recorder=self.recorder)

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        # As Application.save, without its runtime Protocol isinstance checks, which cost more
        # per aggregate than signing does.
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, LedgerAggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif isinstance(obj, LedgerAggregate.Event):
                processing_event.events.append(obj)
            elif obj is not None:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        with self._write_lock:
            self.refresh_registry()
            session = SigningSession(self.registry.copy(), dict(self._replay.codes), self.keystore)
            processing_event.saved_kwargs["log_entries"] = [
                log_entry(event, processing_event.aggregates.get(event.originator_id))
                for event in processing_event.events
            ]
            self.mapper.signers = session
            self._signing = session
            try:
                recordings = super()._record(processing_event)
            finally:
                self.mapper.signers = None
                self._signing = None
            self.refresh_registry()
            return recordings

    def _sign_checkpoint(self, tree_size: int, root_hash: bytes) -> Checkpoint:
        registry = self._signing.registry if self._signing is not None else self.registry
        if registry.is_empty:
            raise NotInitialised()
        at = clock.now()
        key = registry.key_for_signing(PLATFORM, at)
        signer = SigningSession(registry, {}, self.keystore).signer(key)
        return make_checkpoint(self.settings.origin, tree_size, root_hash, at, key.kid,
                               key.public_key, signer.sign)

    def refresh_registry(self) -> None:
        """Read key events stored since the last look, checking each signature as it is applied."""
        log, events = tables.log, self.recorder.events_table
        query = (
            select(log.c.position, events.c.id, events.c.originator_id,
                   events.c.originator_version, events.c.topic, events.c.state)
            .join(events, events.c.id == log.c.notification_id)
            .where(log.c.stream == Authority.__name__, log.c.position > self._registry_position)
            .order_by(log.c.position)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        for position, nid, oid, version, topic, state in rows:
            self._replay.feed(nid, oid, version, topic, bytes(state))
            if self._replay.failures:
                raise LedgerCorrupted(
                    f"the key registry in the ledger does not verify: {self._replay.failures[0]}"
                )
            self._registry_position = position

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of the whole log now."""
        return self.recorder.add_checkpoint()

    # -- authorities and keys ------------------------------------------------------------------

    def initialise(self, platform: AuthorityProfile) -> str:
        """Create the platform's first key and record it as the ledger's first event."""
        self.refresh_registry()
        if not self.registry.is_empty:
            raise AlreadyInitialised("the ledger is already initialised")
        return self._register(platform)

    def register_authority(self, profile: AuthorityProfile,
                           expires_at: datetime | None = None) -> str:
        """Register an authority with a newly generated key; return the key id."""
        self.refresh_registry()
        if self.registry.is_empty:
            raise NotInitialised()
        if profile.code in self.registry.authorities:
            raise AuthorityAlreadyRegistered(profile.code)
        return self._register(profile, expires_at)

    def _register(self, profile: AuthorityProfile, expires_at: datetime | None = None) -> str:
        now = clock.now()
        kid, signer, created = self._new_key(profile.code, now.year, existing_ok=True)
        authority = Authority.register(
            actor=PLATFORM, code=profile.code, kind=profile.kind, name_zh=profile.name_zh,
            name_en=profile.name_en, kid=kid, public_key=b64(signer.public_key),
            valid_from=now, expires_at=expires_at,
        )
        self._save_with_new_key(authority, kid if created else None)
        return kid

    def rotate_key(self, code: str, expires_at: datetime | None = None) -> str:
        """Issue a new key to an authority; its current key is retired from now."""
        authority = self._authority(code)
        now = clock.now()
        kid, signer, _ = self._new_key(code, now.year, existing_ok=False, taken=authority)
        authority.rotate_key(actor=PLATFORM, kid=kid, public_key=b64(signer.public_key),
                             valid_from=now, expires_at=expires_at)
        self._save_with_new_key(authority, kid)
        return kid

    def revoke_key(self, kid: str, *, reason: str, revoked_at: datetime | None = None) -> None:
        """Revoke a key from ``revoked_at`` (default now); events it signs from then are invalid."""
        self.refresh_registry()
        key = self.registry.keys.get(kid)
        if key is None:
            raise LedgerError(f"key {kid!r} is not in the key registry")
        authority = self._authority(key.authority)
        authority.revoke_key(actor=PLATFORM, kid=kid, reason=reason,
                             revoked_at=revoked_at or clock.now())
        self.save(authority)

    def _authority(self, code: str) -> Authority:
        try:
            authority: object = self.repository.get(authority_id(code))
        except AggregateNotFoundError:
            raise UnknownAuthority(code) from None
        if not isinstance(authority, Authority):
            raise UnknownAuthority(code)
        return authority

    def _new_key(self, code: str, year: int, *, existing_ok: bool,
                 taken: Authority | None = None) -> tuple[str, Signer, bool]:
        """A key id not used in the ledger or the key folder, and its signer."""
        n = 1
        while True:
            kid = f"{code}-{year}-{n}"
            in_ledger = kid in self.registry.keys or (
                taken is not None and any(p.kid == kid for p in taken.keys))
            on_disk = self.keystore.private_path(kid).exists()
            if not in_ledger and not on_disk:
                return kid, self.keystore.generate(kid), True
            if not in_ledger and on_disk and existing_ok and n == 1:
                # A key made for this ledger whose registration never landed: use it.
                return kid, self.keystore.signer(kid), False
            n += 1

    def _save_with_new_key(self, aggregate: Authority, new_kid: str | None) -> None:
        try:
            self.save(aggregate)
        except BaseException:
            if new_kid is not None:  # the key was never registered: leave no orphan behind
                self.keystore.private_path(new_kid).unlink(missing_ok=True)
                self.keystore.public_path(new_kid).unlink(missing_ok=True)
            raise

    # -- credit records ------------------------------------------------------------------------

    def submit_record(self, submission: RecordSubmission) -> UUID:
        """A department submits one record; returns its id."""
        return self.submit_records([submission])[0]

    def submit_records(self, submissions: Iterable[RecordSubmission]) -> list[UUID]:
        """Submit many records in one transaction (all or nothing)."""
        events = [
            CreditRecord.submission(
                actor=s.actor, subject=s.subject, item_code=s.item_code,
                decision_number=s.decision_number, decision_date=s.decision_date,
                summary=s.summary, details=s.details,
            )
            for s in submissions
        ]
        self._save_new(events)
        return [e.originator_id for e in events]

    def _save_new(self, events: Sequence[LedgerAggregate.Event]) -> None:
        try:
            self.save(*events)
        except IntegrityError as exc:
            raise RecordAlreadySubmitted(
                "a record with the same department, item, decision number and subject "
                "is already in the ledger"
            ) from exc

    def correct_record(self, record_id: UUID, *, actor: str, reason: str,
                       changes: dict[str, Any]) -> None:
        record = self.get_record(record_id)
        record.correct(actor=actor, reason=reason, changes=changes)
        self.save(record)

    def get_record(self, record_id: UUID) -> CreditRecord:
        try:
            record: object = self.repository.get(record_id)
        except AggregateNotFoundError:
            raise RecordNotFound(record_id) from None
        if not isinstance(record, CreditRecord):
            raise RecordNotFound(record_id)
        return record

    def event_count(self) -> int:
        """Events in the log (notification ids may have gaps on PostgreSQL; positions do not)."""
        with self.engine.connect() as connection:
            last = connection.execute(select(func.max(tables.log.c.position))).scalar()
        return 0 if last is None else int(last) + 1


def log_entry(event: DomainEventProtocol[Any], aggregate: object | None) -> LogEntry:
    """The index row of an event: its stream (aggregate class), subject and two times."""
    stream = type(event).__qualname__.rsplit(".", 1)[0]
    if isinstance(aggregate, LedgerAggregate):
        subject = aggregate.subject_key
    else:  # an event saved on its own: only creation events of new aggregates are
        subject = getattr(event, "subject", None)
    recorded_at: datetime = getattr(event, "timestamp")  # noqa: B009 - not on the Protocol
    return LogEntry(stream=stream, subject=subject, recorded_at=recorded_at,
                    effective_at=effective_at(event))
