"""The application recorder: events, their log entries, chains and a checkpoint in one transaction.

It extends eventsourcing-sqlalchemy's recorder (tables, transactions, reads) in two ways:
- rows go in through the database driver's own batch insert (``ledger/bulk.py``: ``executemany``
  on SQLite, ``COPY`` on PostgreSQL) instead of one ORM object per event, which is what
  made bulk ingest slow;
- the same transaction, under the write lock, appends the events to ``ledger_log`` with their leaf
  hashes, stores the completed Merkle nodes, extends each subject's chain and the chain map
  (``ledger/chain_map_store.py``) and writes a checkpoint signed by the platform, so no committed
  event is ever outside a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore, transactions
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from domain import clock
from domain.clock import naive_utc
from ledger import tables
from ledger.bulk import BulkWriter
from ledger.chain_map_store import ChainMapStore
from ledger.known_aggregates import KnownAggregates
from ledger.library_seams import lock_events_table, notify_new_events
from ledger.tables import stored_nodes as stored_node_source
from proofs import chain_map, envelope
from proofs.checkpoint import Checkpoint
from proofs.merkle import CompactRange, ProofError, consistency_proof, verify_consistency


class LedgerCorrupted(Exception):
    """The ledger's own tables contradict each other; writing on top of them is refused."""


@dataclass(slots=True)
class LogEntry:
    """What the index records about one event besides the event itself."""

    stream: str
    subject: str | None
    recorded_at: datetime
    effective_at: datetime | None


# Whether the stored tree (as this transaction sees it) extends a tree of ``size`` leaves with
# root ``root``: None when it does, else the reason.
Extends = Callable[[int, bytes], "str | None"]


class CheckpointSigner(Protocol):
    def __call__(self, tree_size: int, root_hash: bytes, chain_root: bytes,
                 extends: Extends) -> Checkpoint: ...


class StoreRolledBack(LedgerCorrupted):
    """The store does not extend the last checkpoint the platform signed: nothing is signed."""


# Writers date and sign their events before they wait for the write lock, so an event may follow
# one dated a little later by a writer that got the lock first. Up to this much is such a wait;
# anything older is a back-dated event, refused here and named by `credit verify`.
TIME_TOLERANCE = timedelta(hours=1)


class TimeGoesBack(LedgerCorrupted):
    """An event recorded before the one the log holds last, or after the moment it commits."""


class LedgerRecorder(SQLAlchemyApplicationRecorder):
    def __init__(self, datastore: SQLAlchemyDatastore, *, events_table_name: str,
                 schema_name: str | None = None) -> None:
        super().__init__(datastore, events_table_name=events_table_name, schema_name=schema_name)
        self.checkpoint_signer: CheckpointSigner | None = None
        self.size_guard: Callable[[int], None] | None = None  # refuses a truncated store
        self._bulk_depth = 0
        self._latest_time: tuple[int, datetime] | None = None  # (log size, latest event time)
        self._batch_latest: datetime | None = None
        self._pending_signed: Checkpoint | None = None
        # told of every checkpoint once its transaction has committed (the signer's record)
        self.on_committed: Callable[[Checkpoint], None] | None = None
        # told how many events each write appended (the WAL checkpointer's nudge)
        self.after_write: Callable[[int], None] | None = None
        assert datastore.engine is not None
        self.writer = BulkWriter(datastore.engine.dialect.name, events_table_name)
        self.chain_map_store = ChainMapStore(datastore.engine.dialect.name)
        self._head: tuple[int, list[bytes]] | None = None  # cached compact range, after commit
        self.known_aggregates = KnownAggregates()
        self._chains_ready = False  # ledger_chains keyed as its upsert needs (upgraded once)

    def lock_for_append(self, session: Session) -> None:
        """Take the write lock before the transaction reads anything it appends after."""
        assert self.datastore.engine is not None
        if self.datastore.engine.dialect.name == "sqlite":
            # A write statement, even one that changes nothing, makes pysqlite BEGIN and SQLite
            # take the database's write lock before this transaction reads anything.
            session.execute(text("UPDATE ledger_checkpoints SET seq = seq WHERE 0 = 1"))
        else:
            lock_events_table(self, session)

    @property
    def events_table(self) -> Any:
        return self.events_record_cls.__table__

    def create_table(self) -> None:
        super().create_table()
        assert self.datastore.engine is not None
        tables.metadata.create_all(self.datastore.engine, checkfirst=True)

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        session: Session | None = None,
        log_entries: Sequence[LogEntry] | None = None,
        **kwargs: Any,
    ) -> Sequence[int]:
        if session is not None:
            raise ProgrammingError("the ledger recorder manages its own transaction")
        if log_entries is None or len(log_entries) != len(stored_events):
            raise ProgrammingError("each stored event needs its log entry")
        if self.checkpoint_signer is None:
            raise ProgrammingError("the ledger recorder has no checkpoint signer")
        if not stored_events:
            return []
        try:
            with self.transaction(commit=True) as tx:
                notification_ids = self._insert_rows(tx, stored_events)
                start = self._start(tx)
                if self.size_guard is not None:
                    # before anything is appended: a store shorter than what was signed is
                    # refused as rolled back, not mistaken for a duplicate at its tree nodes
                    self.size_guard(start[0])
                size, hashes, root, chain_root = self._append_to_log(
                    tx, stored_events, notification_ids, log_entries, start)
                checkpoint = self.checkpoint_signer(size, root, chain_root,
                                                    self._extends(tx, start, size, root))
                self._write_checkpoint(tx, checkpoint)
                notify_new_events(self, tx)
        except BaseException:
            self.chain_map_store.discard()
            self._head = None
            self._latest_time = None
            raise
        self._head = (size, hashes)
        self._latest_time = (size, self._batch_latest) if self._batch_latest else None
        self.chain_map_store.committed(size)
        self._committed(checkpoint)
        if self.after_write is not None:
            self.after_write(len(stored_events))
        return notification_ids

    @property
    def in_bulk(self) -> bool:
        """Inside a bulk transaction (an import): a failed statement may have ended it."""
        return self._bulk_depth > 0

    def _committed(self, checkpoint: Checkpoint) -> None:
        if self._bulk_depth:
            self._pending_signed = checkpoint  # told when the whole bulk transaction commits
        elif self.on_committed is not None:
            self.on_committed(checkpoint)

    def _start(self, tx: Session) -> tuple[int, bytes | None]:
        """The log's size before this append, and its root when the tree edge is cached."""
        last = tx.execute(select(func.max(tables.log.c.position))).scalar()
        size = 0 if last is None else int(last) + 1
        if self._head is not None and self._head[0] == size:
            return size, CompactRange(size, list(self._head[1])).root()
        return size, None

    def _extends(self, tx: Session, start: tuple[int, bytes | None], size: int,
                 root: bytes) -> Extends:
        def extends(old_size: int, old_root: bytes) -> str | None:
            if old_size > size:
                return f"the store holds {size} events, fewer than {old_size}"
            if old_size == 0:
                return None
            if old_size == start[0] and start[1] is not None:
                # appended to the very tree edge whose root this is: consistent by construction
                return None if start[1] == old_root else (
                    f"the stored tree of {old_size} events has another root")
            try:
                proof = consistency_proof(old_size, size, stored_node_source(tx))
                verify_consistency(old_size, size, old_root, root, proof)
            except (ProofError, LookupError) as exc:
                return str(exc)
            return None
        return extends

    def _insert_rows(self, tx: Session, stored_events: Sequence[StoredEvent]) -> list[int]:
        # Lock first (PostgreSQL: the events table; SQLite: the database), so that what this
        # transaction reads next (the tree's size and edge) cannot change under it.
        self.lock_for_append(tx)
        return self.writer.insert_events(tx, stored_events)

    def _append_to_log(
        self,
        tx: Session,
        stored_events: Sequence[StoredEvent],
        notification_ids: Sequence[int],
        log_entries: Sequence[LogEntry],
        start: tuple[int, bytes | None],
    ) -> tuple[int, list[bytes], bytes, bytes]:
        size = start[0]
        self._check_times(tx, size, log_entries)
        self.chain_map_store.begin(size)
        if self._head is not None and self._head[0] == size:
            hashes = list(self._head[1])
        else:
            hashes = load_compact_range(tx, size)
        new_nodes: list[tuple[int, int, bytes]] = []
        tree = CompactRange(
            size, hashes, on_node=lambda level, idx, h: new_nodes.append((level, idx, h))
        )
        rows = []
        links = []
        for position, (event, nid, entry) in enumerate(
            zip(stored_events, notification_ids, log_entries, strict=True), start=size
        ):
            leaf = envelope.leaf_hash(
                event.originator_id, event.originator_version, event.topic, event.state
            )
            tree.append(leaf)
            links.append((chain_map.chain_key(entry.subject, entry.stream), position, leaf))
            rows.append((
                position, nid, event.originator_id, event.originator_version, entry.stream,
                entry.subject, naive_utc(entry.recorded_at),
                None if entry.effective_at is None else naive_utc(entry.effective_at), leaf,
            ))
        self.writer.insert_log(tx, rows)
        self.writer.insert_nodes(tx, new_nodes)
        chain_root = self.chain_map_store.append(tx, links)
        return tree.size, list(tree.hashes), tree.root(), chain_root

    def _check_times(self, tx: Session, size: int, log_entries: Sequence[LogEntry]) -> None:
        """Time only moves forward: no event of a batch is recorded before the latest event of
        the batches committed before it (within a batch, the order of creation may differ from
        the order of the log), nor after this moment, when it commits."""
        if not log_entries:
            return
        times = [naive_utc(entry.recorded_at) for entry in log_entries]
        earliest, latest = min(times), max(times)
        before: datetime | None = None
        if size:
            if self._latest_time is not None and self._latest_time[0] == size:
                before = self._latest_time[1]
            else:  # the latest time of the batches before (a batch's order may differ)
                before = tx.execute(select(func.max(tables.log.c.recorded_at))
                                    .where(tables.log.c.position >= max(0, size - 1000))).scalar()
            if before is not None and earliest < before - TIME_TOLERANCE:
                raise TimeGoesBack(f"an event recorded at {earliest.isoformat()} UTC would follow "
                                   f"one recorded at {before.isoformat()} UTC: the ledger's time "
                                   "only moves forward; nothing was written")
        self._batch_latest = max(latest, before) if before is not None else latest
        now = naive_utc(clock.now())
        if latest > now:
            raise TimeGoesBack(f"an event recorded at {latest.isoformat()} UTC would commit at "
                               f"{now.isoformat()} UTC, before it: nothing was written")

    def _write_checkpoint(self, tx: Session, checkpoint: Checkpoint) -> None:
        last = tx.execute(select(func.max(tables.checkpoints.c.seq))).scalar()
        tx.execute(insert(tables.checkpoints), [{
            "seq": 1 if last is None else int(last) + 1,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "issued_at": naive_utc(checkpoint.issued_at),
            "kid": checkpoint.key_name,
            "note": checkpoint.note,
        }])

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """One aggregate's events, through a Core query (the ORM query costs more than the
        rows)."""
        table = self.events_table
        version = table.c.originator_version
        query = select(version, table.c.topic, table.c.state).where(
            table.c.originator_id == originator_id)
        if gt is not None:
            query = query.where(version > gt)
        if lte is not None:
            query = query.where(version <= lte)
        query = query.order_by(version.desc() if desc else version)
        if limit is not None:
            query = query.limit(limit)
        with self.reading() as connection:
            rows = connection.execute(query).all()
        return [StoredEvent(originator_id=originator_id, originator_version=v, topic=t,
                            state=bytes(state)) for v, t, state in rows]

    def transaction(self, commit: bool = True) -> Any:
        """The library's transaction; before this process's first write, a store whose chain
        index predates its key ``(bucket, chain)`` is upgraded (``tables.upgrade_chains_table``,
        in a transaction of its own: never inside an open one)."""
        if commit and not self._chains_ready and _active_transaction() is None:
            assert self.datastore.engine is not None
            tables.upgrade_chains_table(self.datastore.engine)
            self._chains_ready = True
        return super().transaction(commit=commit)

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """Something to read with: inside a write (a bulk import), that write's own session, so
        it sees its uncommitted rows; otherwise a plain pooled connection (far cheaper than an
        ORM session)."""
        active = _active_transaction()
        if active is None:
            engine: Any = self.datastore.engine
            with engine.connect() as connection:
                yield connection
        else:
            yield active.session

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Everything inserted in the block commits together at its end, or not at all
        (eventsourcing-sqlalchemy nests transactions opened in the same context)."""
        self._bulk_depth += 1
        try:
            with self.transaction(commit=True):
                yield
        except BaseException:
            self._head = None  # the cached tree edge may belong to rolled-back rows
            self._latest_time = None
            self.chain_map_store.discard()
            if self._bulk_depth == 1:
                self._pending_signed = None  # never committed: the signer's record stays
                self.known_aggregates.write_rolled_back()
            raise
        finally:
            self._bulk_depth -= 1
        if self._bulk_depth == 0:
            self.known_aggregates.write_committed()
            if self._pending_signed is not None:
                signed, self._pending_signed = self._pending_signed, None
                self._committed(signed)

    def seen_with_events(self, ids: Iterable[UUID]) -> None:
        """``ids`` were just read as having events: remembered (``known_aggregates``) if what
        was read has committed; inside a bulk write, once it commits; inside another write,
        not at all (its rows may yet roll back)."""
        if _active_transaction() is None:
            self.known_aggregates.committed(ids)
        elif self._bulk_depth:
            self.known_aggregates.staged(ids)

    def add_checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of the tree as it stands now (``credit checkpoint``)."""
        with self.locked() as tx:
            return self.checkpoint_in(tx)

    @contextmanager
    def locked(self) -> Iterator[Session]:
        """A transaction holding the write lock: what it reads cannot change under it."""
        self._signed_in_lock: Checkpoint | None = None
        with self.transaction(commit=True) as tx:
            self.lock_for_append(tx)
            yield tx
        if self._signed_in_lock is not None:
            self._committed(self._signed_in_lock)
            self._signed_in_lock = None

    def checkpoint_in(self, tx: Session) -> Checkpoint:
        """Sign and store a checkpoint of the tree inside a ``locked`` transaction."""
        if self.checkpoint_signer is None:
            raise ProgrammingError("the ledger recorder has no checkpoint signer")
        start = self._start(tx)
        size = start[0]
        tree = CompactRange(size, load_compact_range(tx, size))
        self.chain_map_store.begin(size)
        root = tree.root()
        checkpoint = self.checkpoint_signer(size, root, self.chain_map_store.root(tx),
                                            self._extends(tx, (size, root), size, root))
        self._write_checkpoint(tx, checkpoint)
        self._signed_in_lock = checkpoint
        return checkpoint


def load_compact_range(tx: Session, size: int) -> list[bytes]:
    """The perfect-subtree hashes of the stored tree of ``size`` leaves, left to right."""
    wanted = CompactRange.levels(size)
    found = tables.fetch_nodes(tx, tables.tree, [at for at in wanted if at[0] > 0])
    for level, idx in wanted:
        if level == 0:
            leaf = tx.execute(
                select(tables.log.c.leaf_hash).where(tables.log.c.position == idx)).scalar()
            if leaf is not None:
                found[(0, idx)] = bytes(leaf)
    hashes: list[bytes] = []
    for level, idx in wanted:
        value = found.get((level, idx))
        if value is None:
            raise LedgerCorrupted(
                f"the Merkle tree has no node at level {level}, index {idx} for size {size}"
            )
        hashes.append(value)
    return hashes


def _active_transaction() -> Any | None:
    """The write this context is inside (eventsourcing-sqlalchemy's), if any."""
    try:
        return transactions.get()
    except LookupError:
        return None
