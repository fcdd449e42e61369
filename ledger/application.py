"""The ledger application: events in, signed and checkpointed; keys, policies and facts out.

It wires eventsourcing's Application to the signing mapper, the ledger recorder and the key
registry, and keeps two views it needs to write correctly: the key registry and the published
policies, both refreshed from the log before every save. The credit workflows are in
``workflows.services``; the rules in ``domain``; keys and signatures in ``keys``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import EventStore, IntegrityError, JSONTranscoder, Recording
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from domain import clock
from domain.authorities import PLATFORM, Authority, AuthorityProfile, authority_id, numbered_kid
from domain.base import LedgerAggregate, effective_at
from domain.policies import PolicyBook, parse_policy
from domain.policy_versions import PolicyVersion
from domain.state import Fact
from keys.registry import KeyRegistry, RegisteredKey, UnknownAuthority
from keys.signer import Signer, b64
from keys.store import KeyStore
from ledger import tables
from ledger.errors import (
    AlreadyInitialised,
    AlreadyRecorded,
    AuthorityAlreadyRegistered,
    LedgerError,
    NotFound,
    NotInitialised,
)
from ledger.fact_queries import fact_from_row, read_facts
from ledger.mapper import SigningMapper, register_payload_types
from ledger.presigning import Presigner, presigning
from ledger.recorder import Extends, LedgerCorrupted, LedgerRecorder, LogEntry, StoreRolledBack
from ledger.settings import Settings
from ledger.signing import Presigned, SigningEventStore, SigningSession
from ledger.storage import (
    LEDGER_TABLE,
    WalCheckpointer,
    prepare_database,
    sqlite_file,
    tune_sqlite_writer,
)
from proofs.checkpoint import Checkpoint, make_checkpoint, parse_checkpoint
from proofs.envelope import format_instant
from proofs.failures import MalformedCheckpoint
from proofs.registry_replay import RegistryReplay

EVENTS_TABLE = LEDGER_TABLE
A = TypeVar("A", bound=LedgerAggregate)
_REFRESHED_STREAMS = (Authority.__name__, PolicyVersion.__name__)
# One probe of the (stream, position) index per stream. Written as ``stream IN (…)``, PostgreSQL
# without statistics (after an import, before autovacuum's ANALYZE) answered it by reading the
# whole log backwards from its end, as key and policy events are at its start: 333 ms a call at
# 1,200,000 events, twice a batch, where each probe takes 0.1 ms.
_LATEST_KEY_OR_POLICY = text(
    "SELECT max(latest) FROM ("
    + " UNION ALL ".join(f"SELECT max(position) AS latest FROM ledger_log WHERE stream = '{s}'"
                         for s in _REFRESHED_STREAMS)
    + ") AS streams")


class CreditLedger(Application[UUID]):
    """The signed, append-only credit ledger."""

    name = "credit"

    def __init__(self, settings: Settings, keystore: KeyStore | None = None) -> None:
        self.settings = settings
        self.keystore = keystore or KeyStore(settings.keys_dir, settings.secret_for,
                                             settings.kdf_iterations)
        # a process may open the same keys from the settings (ledger/presigning.py)
        self._keys_from_settings = keystore is None
        self._replay = RegistryReplay()
        self._registry_position = -1
        self.policies = PolicyBook()
        self.policy_facts: list[Fact] = []
        self._policy_position = -1
        self._seen = -1  # the last key or policy event looked at
        self._signing: SigningSession | None = None
        self._write_lock = threading.RLock()
        self._last_signed_at: datetime | None = None
        self._unit: dict[Any, LedgerAggregate | LedgerAggregate.Event] | None = None
        self._checkpointer: WalCheckpointer | None = None  # SQLite files: see ledger/storage.py
        url = prepare_database(settings.database_url, require_ledger=not settings.create)
        super().__init__(env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": url,
            "CREATE_TABLE": "y" if settings.create else "n",
        })
        self.recorder.checkpoint_signer = self._sign_checkpoint
        self.recorder.size_guard = self._check_not_truncated
        self.recorder.on_committed = self._record_signed
        self.refresh()

    # -- wiring -------------------------------------------------------------------------------

    recorder: LedgerRecorder
    mapper: SigningMapper

    def construct_mapper(self) -> SigningMapper:
        return SigningMapper(self.construct_transcoder())

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        register_payload_types(transcoder)  # the library's three, and calendar dates

    def construct_recorder(self) -> LedgerRecorder:
        datastore = self.factory.datastore  # type: ignore[attr-defined]
        recorder = LedgerRecorder(datastore, events_table_name=EVENTS_TABLE)
        if self.settings.create:
            recorder.create_table()
        tune_sqlite_writer(datastore.engine)
        path = sqlite_file(datastore.engine)
        self._checkpointer = WalCheckpointer(path) if path is not None else None
        if self._checkpointer is not None:
            recorder.after_write = self._checkpointer.nudge
        return recorder

    def construct_event_store(self) -> EventStore[UUID]:
        return SigningEventStore(mapper=self.mapper, recorder=self.recorder)

    @property
    def engine(self) -> Any:
        return self.recorder.datastore.engine

    @property
    def registry(self) -> KeyRegistry:
        return self._replay.registry

    @property
    def platform_first_key(self) -> bytes | None:
        """The key the platform registered itself with: the ledger's trust anchor."""
        return self._replay.genesis_key

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        super().close()
        if self.engine is not None:
            self.engine.dispose()

    # -- saving -------------------------------------------------------------------------------

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        presigned: Presigned | None = None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        # As Application.save, through the public EventStore.put, without its runtime Protocol
        # isinstance checks (they cost more per aggregate than signing does). The ledger takes
        # no snapshots and has no _notify hook, so nothing the library's save does is skipped
        # (tests/unit/test_library_seams.py holds both true). ``presigned`` events (signed ahead,
        # see ``start_presigning``) are saved after ``objs``.
        if self._unit is not None:  # presigned events are signed again with the unit's others
            for obj in (*objs, *(presigned.events if presigned is not None else ())):
                if isinstance(obj, LedgerAggregate):
                    self._unit[obj.id] = obj
                elif isinstance(obj, LedgerAggregate.Event):
                    self._unit[(obj.originator_id, obj.originator_version)] = obj
                elif obj is not None:
                    raise LedgerError("only ledger aggregates and events join a unit of work")
            return []
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
        return self._put_signed(processing_event, presigned)

    def save_new(self, *objs: LedgerAggregate | LedgerAggregate.Event, what: str,
                 presigned: Presigned | None = None) -> None:
        """Save aggregates or events that must not exist yet (then any ``presigned`` ones); a
        clash names ``what``."""
        try:
            self.save(*objs, presigned=presigned)
        except IntegrityError as exc:
            raise AlreadyRecorded(f"{what} is already in the ledger") from exc

    def signing_snapshot(self) -> tuple[SigningSession, int]:
        """The keys a save would sign with now (a copy of its own), and the key and policy log
        position they stand at: for ``start_presigning``, on this thread or another."""
        with self._write_lock:
            self.refresh()
            return self._signing_session(), self._seen

    def _signing_session(self) -> SigningSession:
        """The keys of the registry as this ledger last read it, in a copy a save may extend."""
        return SigningSession(self.registry.copy(), dict(self._replay.codes), self.keystore)

    def start_presigning(self, events: Sequence[LedgerAggregate.Event],
                         snapshot: tuple[SigningSession, int]) -> Callable[[], Presigned]:
        """Sign events ahead of their save with the keys of a ``signing_snapshot``: the
        signatures are computed on the signing threads while the caller goes on; the call
        returned waits for them. Touches nothing else of the ledger (any thread may call it)."""
        session, seen = snapshot
        stored_events = self.mapper.start_signing(events, session)
        return lambda: Presigned(events, stored_events(), seen)

    def presigning(self, processes: bool | None = None) -> AbstractContextManager[Presigner]:
        """Batches built and signed ahead of their save, in a process of their own once it has
        started (``ledger.presigning``)."""
        return presigning(self.start_presigning,
                          self.settings if self._keys_from_settings else None, processes)

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """Save everything the block saves in one transaction at its end (or nothing, if it
        raises). Aggregates saved in the block are read back from it; state read from the
        store does not see them yet."""
        if self._unit is not None:
            yield
            return
        self._unit = {}
        try:
            yield
            pending = list(self._unit.values())
        finally:
            self._unit = None
        if pending:
            self.save(*pending)

    def _put_signed(self, processing_event: ProcessingEvent[UUID],
                    presigned: Presigned | None = None) -> list[Recording[UUID]]:
        """Sign and store the collected events (then any ``presigned``) in one transaction,
        under the key registry as the log holds it now."""
        with self._write_lock:
            self.refresh()
            if presigned is not None and presigned.seen != self._seen:
                # a key or policy event since they were signed: their keys may have changed
                processing_event.events.extend(presigned.events)
                presigned = None
            session = self._signing_session()
            saved = [*processing_event.events, *(presigned.events if presigned else ())]
            processing_event.saved_kwargs["log_entries"] = [
                log_entry(event, processing_event.aggregates.get(event.originator_id))
                for event in saved
            ]
            self.mapper.signers = session
            self._signing = session
            try:
                recordings = self.events.put(processing_event.events, presigned=presigned,
                                             tracking=processing_event.tracking,
                                             **processing_event.saved_kwargs)
                cache = self.repository.cache
                if cache is not None and not self.repository.fastforward:
                    for aggregate_id, aggregate in processing_event.aggregates.items():
                        cache.put(aggregate_id, aggregate)
            finally:
                self.mapper.signers = None
                self._signing = None
            if any(e.stream in _REFRESHED_STREAMS
                   for e in processing_event.saved_kwargs["log_entries"]):
                self.refresh()
            return recordings

    def platform_signer(self, at: datetime) -> tuple[RegisteredKey, Signer]:
        """The platform key that signs at ``at`` (checkpoints, extracts), and its signer."""
        registry = self._signing.registry if self._signing is not None else self.registry
        if registry.is_empty:
            raise NotInitialised()
        key = registry.key_for_signing(PLATFORM, at)
        return key, SigningSession(registry, {}, self.keystore).signer(key)

    def _sign_checkpoint(self, tree_size: int, root_hash: bytes, chain_root: bytes,
                         extends: Extends) -> Checkpoint:
        """Sign a checkpoint, but never one inconsistent with the last one this signer signed
        (C2SP tlog-checkpoint): a truncated, rolled-back or rewritten store is refused. Time
        only moves forward: the checkpoint's time is after the last one's."""
        at = clock.now()
        last = self.last_signed()
        if last is not None:
            if last.tree_size > tree_size:
                raise StoreRolledBack(
                    f"the store holds {tree_size} events (root {b64(root_hash)}), but this "
                    f"platform signed a checkpoint of {last.tree_size} events (root "
                    f"{b64(last.root_hash)}) at {format_instant(last.issued_at)}: the store was "
                    "truncated or rolled back; nothing is signed")
            problem = extends(last.tree_size, last.root_hash)
            if problem is not None:
                raise StoreRolledBack(
                    f"the store's {tree_size} events (root {b64(root_hash)}) do not extend the "
                    f"{last.tree_size} events (root {b64(last.root_hash)}) this platform signed "
                    f"at {format_instant(last.issued_at)}: {problem}; the store was rewritten; "
                    "nothing is signed")
        latest = max((t for t in (last.issued_at if last else None, self._last_signed_at)
                      if t is not None), default=None)
        if latest is not None and at <= latest:
            # checkpoint times strictly increase: several commits in one tick of the clock (or
            # a frozen one, or one bulk transaction) follow the last by a microsecond; a clock
            # set back cannot date events before those already logged (the recorder refuses)
            at = latest + timedelta(microseconds=1)
        self._last_signed_at = at
        key, signer = self.platform_signer(at)
        return make_checkpoint(self.settings.origin, tree_size, root_hash, at, chain_root, key.kid,
                               key.public_key, signer.sign)

    def _check_not_truncated(self, size: int) -> None:
        last = self.last_signed()
        if last is not None and last.tree_size > size:
            raise StoreRolledBack(
                f"the store holds {size} events, but this platform signed a checkpoint of "
                f"{last.tree_size} events (root {b64(last.root_hash)}) at "
                f"{format_instant(last.issued_at)}: the store was truncated or rolled back; "
                "nothing is written or signed")

    def last_signed(self) -> Checkpoint | None:
        """The signer's record of the last checkpoint it signed (kept beside its key)."""
        note = self.keystore.last_signed()
        if note is None:
            return None
        try:
            return parse_checkpoint(note)
        except MalformedCheckpoint as exc:
            raise StoreRolledBack(f"the signer's record {self.keystore.signed_record_path} is "
                                  f"not a checkpoint note: {exc}") from None

    def _record_signed(self, checkpoint: Checkpoint) -> None:
        self.keystore.record_signed(checkpoint.note)

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of the whole log now."""
        return self.recorder.add_checkpoint()

    # -- what the ledger must know to write: keys and policies --------------------------------

    def refresh(self) -> None:
        """Read key events and policy versions stored since the last look (by any process).

        One indexed probe first: almost always nothing is new."""
        with self.reading() as session:
            latest = session.execute(_LATEST_KEY_OR_POLICY).scalar()
        if latest is None or latest <= self._seen:
            return
        self._refresh_registry()
        self._refresh_policies()
        self._seen = latest

    def _stream_rows(self, stream: str, after: int) -> list[Any]:
        log, events = tables.log, self.recorder.events_table
        query = (
            select(log.c.position, events.c.id, events.c.originator_id,
                   events.c.originator_version, events.c.topic, events.c.state)
            .join(events, events.c.id == log.c.notification_id)
            .where(log.c.stream == stream, log.c.position > after)
            .order_by(log.c.position)
        )
        with self.reading() as session:
            return list(session.execute(query).all())

    def _refresh_registry(self) -> None:
        """Key events are checked signature by signature as they are applied."""
        for position, nid, oid, version, topic, state in self._stream_rows(
                Authority.__name__, self._registry_position):
            self._replay.feed(nid, oid, version, topic, bytes(state))
            if self._replay.failures:
                raise LedgerCorrupted(
                    f"the key registry in the ledger does not verify: {self._replay.failures[0]}"
                )
            self._registry_position = position

    def _refresh_policies(self) -> None:
        for row in self._stream_rows(PolicyVersion.__name__, self._policy_position):
            fact = fact_from_row(*row)
            self.policy_facts.append(fact)
            self.policies.add(parse_policy(fact.data["document"]))
            self._policy_position = fact.position

    def reading(self) -> Any:
        """A connection for reads: inside a bulk write, that write's own (uncommitted) view."""
        return self.recorder.reading()

    def stream_facts(self, stream: str) -> list[Fact]:
        """Every event of one kind of aggregate (e.g. ``Objection``), in log order."""
        return [fact_from_row(*row) for row in self._stream_rows(stream, -1)]

    def facts_about(self, subject: str) -> list[Fact]:
        """Every event about one subject, in log order, read through the subject index."""
        with self.reading() as session:
            return read_facts(session, self.recorder.events_table, subject)

    # -- authorities and keys ------------------------------------------------------------------

    def initialise(self, platform: AuthorityProfile) -> str:
        """Create the platform's first key and record it as the ledger's first event."""
        self.refresh()
        if not self.registry.is_empty:
            raise AlreadyInitialised("the ledger is already initialised")
        kid = self._register(platform)
        self.keystore.pin_platform_key(self.registry.keys[kid].public_key)
        return kid

    def register_authority(self, profile: AuthorityProfile,
                           expires_at: datetime | None = None) -> str:
        """Register an authority with a newly generated key; return the key id."""
        self.refresh()
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
        authority = self.authority(code)
        now = clock.now()
        kid, signer, _ = self._new_key(code, now.year, existing_ok=False, taken=authority)
        authority.rotate_key(actor=PLATFORM, kid=kid, public_key=b64(signer.public_key),
                             valid_from=now, expires_at=expires_at)
        self._save_with_new_key(authority, kid)
        # the retired keys' private halves leave the folder: nothing signs with them again
        for old in self.registry.authorities[code].kids:
            if old != kid:
                self.keystore.forget_private_key(old)
        return kid

    def revoke_key(self, kid: str, *, reason: str, revoked_at: datetime | None = None) -> None:
        """Revoke a key from ``revoked_at`` (default now); events it signs from then are invalid."""
        self.refresh()
        key = self.registry.keys.get(kid)
        if key is None:
            raise NotFound("key", repr(kid))
        authority = self.authority(key.authority)
        authority.revoke_key(actor=PLATFORM, kid=kid, reason=reason,
                             revoked_at=revoked_at or clock.now())
        self.save(authority)
        self.keystore.forget_private_key(kid)

    def authority(self, code: str) -> Authority:
        try:
            return self.get(authority_id(code), Authority, "authority")
        except NotFound:
            raise UnknownAuthority(code) from None

    def role_of(self, actor: str) -> str:
        """The kind of a registered authority (platform, credit_office, department); kinds never
        change, so only an unknown actor needs a fresh look."""
        if actor not in self.registry.authorities:
            self.refresh()
        if self.registry.is_empty:
            raise NotInitialised()
        entry = self.registry.authorities.get(actor)
        if entry is None:
            raise UnknownAuthority(actor)
        return entry.kind

    def _new_key(self, code: str, year: int, *, existing_ok: bool,
                 taken: Authority | None = None) -> tuple[str, Signer, bool]:
        """A key id not used in the ledger or the key folder, and its signer."""
        n = 1
        while True:
            kid = numbered_kid(code, year, n)
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

    # -- reading aggregates -------------------------------------------------------------------

    def get(self, aggregate_id: UUID, kind: type[A], what: str) -> A:
        """The aggregate, or NotFound naming ``what``."""
        pending = self._unit.get(aggregate_id) if self._unit is not None else None
        if isinstance(pending, kind):
            return pending
        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(what, aggregate_id) from None
        if not isinstance(aggregate, kind):
            raise NotFound(what, aggregate_id)
        return aggregate

    def existing(self, aggregate_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these aggregates already have events (one indexed query)."""
        ids = list(aggregate_ids)
        if not ids:
            return set()
        table = self.recorder.events_table.name
        found: set[UUID] = {i for i in ids if self._unit is not None and i in self._unit}
        found |= self.recorder.known_aggregates.among(ids)  # events are never deleted
        ids = [i for i in ids if i not in found]
        if not ids:
            return found
        read: set[UUID] = set()
        # In the driver's SQL: a batch asks about a thousand ids, and SQLAlchemy compiling an
        # expanding IN of them cost more than the database's look-ups.
        with self.reading() as reader:
            connection = reader.connection() if isinstance(reader, Session) else reader
            if connection.dialect.name == "postgresql":
                rows = connection.exec_driver_sql(
                    f"SELECT originator_id FROM {table} WHERE originator_version = 1 "
                    "AND originator_id = ANY(%(ids)s::uuid[])", {"ids": [str(i) for i in ids]})
                read.update(UUID(str(oid)) for (oid,) in rows)
            else:  # SQLite keeps the 16 bytes
                for start in range(0, len(ids), 500):
                    part = ids[start:start + 500]
                    rows = connection.exec_driver_sql(
                        f"SELECT originator_id FROM {table} WHERE originator_version = 1 "
                        f"AND originator_id IN ({', '.join('?' * len(part))})",
                        tuple(i.bytes for i in part))
                    read.update(UUID(bytes=bytes(oid)) for (oid,) in rows)
            self.recorder.seen_with_events(read)
        return found | read

    def aggregate_count(self, stream: str) -> int:
        """How many aggregates of one kind (``CreditRecord``, ``Subject`` …) the log holds."""
        log = tables.log
        with self.reading() as session:
            return int(session.execute(
                select(func.count()).select_from(log)
                .where(log.c.stream == stream, log.c.originator_version == 1)).scalar() or 0)

    def event_count(self) -> int:
        """Events in the log (notification ids may have gaps on PostgreSQL; positions do not)."""
        with self.reading() as session:
            last = session.execute(select(func.max(tables.log.c.position))).scalar()
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

