"""``credit verify``: check the whole store against its signatures, its Merkle log and checkpoints.

The checks (in ``proofs.checks`` unless named here), each failure a class of ``proofs.failures``
with its check's name and a short fact naming the notification, aggregate and version:

1. key registry   every key event is signed by a platform key valid before it; the first one
                  registers the platform with the trusted key            (``check_registry``)
   store          every event and log row holds values of the types the ledger writes (SQLite
                  keeps any value in any column); one no check can read stops verify, named
2. envelope       every stored state is a signed envelope              (``EventChecker.check``)
3. key            the envelope's key belongs to the event's actor and was valid at its time
4. signature      the Ed25519 signature covers exactly the documented bytes
5. log index      every event is in ``ledger_log`` with the leaf hash the ledger computed when it
                  stored it, and every logged event is still in the store      (``_merge_log``);
                  it is filed under the chain its content names           (``check_chain_key``)
6. versions       each aggregate's versions run 1, 2, 3 … without a gap, all in one chain
                                                                            (``check_versions``)
7. checkpoints    each is a well-formed note signed by a platform key valid at its time, its root
                  and chain root equal those recomputed from the stored events, and sizes never
                  shrink; where a root differs, a consistency proof from the stored tree tells an
                  inconsistent checkpoint apart from altered events        (``check_stored_checkpoint``)
8. coverage       the last checkpoint covers every event; events after it are reported
9. chain index    ``ledger_chains`` holds each chain's recomputed length and head, and
                  ``ledger_map`` the recomputed root                            (``check_chains``)

The store is read in pages by key (flat memory). Signatures are checked on every core: in worker
processes for large stores, in threads for small ones (starting processes costs about a second).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Engine, Table, func, select, type_coerce
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import NullType

from domain.identifiers import mask_subject_key
from keys.registry import KeyRegistry
from keys.signer import b64
from ledger import tables
from ledger.fact_queries import oid_as_stored
from ledger.processes import die_with_parent
from ledger.recorder import TIME_TOLERANCE
from ledger.row_types import (
    EVENT_COLUMNS,
    LOG_COLUMNS,
    UNREADABLE,
    mistyped,
    shown,
    unreadable,
    well_typed,
)
from ledger.tables import stored_nodes
from proofs import chain_map, envelope, merkle
from proofs.checkpoint import Checkpoint
from proofs.checks import (
    EventChecker,
    Row,
    check_chain_key,
    check_registry,
    check_rows_in_worker,
    check_stored_checkpoint,
    check_stored_consistency,
    init_worker,
    oid_text,
)
from proofs.failures import (
    CHECK_ORDER,
    ChainIndexMismatch,
    CheckpointInvalid,
    LogMismatch,
    MalformedStore,
    RolledBack,
    TimeWentBack,
    VerificationFailure,
    VersionsBroken,
)
from proofs.registry_events import REGISTRY_TOPICS

PAGE = 5000
CHAIN_BUCKETS = 4096  # of the chain map's 65,536: sixteen reads of the stored chain index
AGGREGATES_PAGE = 500  # aggregates whose events ``check_versions`` reads at a time
CHUNK = 1000
IN_FLIGHT = 3  # chunks queued per worker
MAX_FAILURES_KEPT = 1000
PROCESSES_FROM = 50_000  # events; below this, threads (no start-up cost) are faster overall

RANK = {check: rank for rank, check in enumerate(CHECK_ORDER)}

def _oid(table: Table, dialect: Dialect) -> str:
    # psycopg2, as SQLAlchemy registers it, makes a UUID object of a uuid column: 4 µs an event
    # of the reader's time for the events and their log rows, to be turned back into text
    return str(oid_as_stored(table.c.originator_id).compile(dialect=dialect))


def read_in_key_order(conn: Connection) -> None:
    """Let PostgreSQL read the pages in index order, for this transaction.

    Without fresh statistics (after a large import, before autovacuum has analysed the tables)
    its planner answered ``id > last ORDER BY id LIMIT n`` by sorting every row after ``last``,
    for each page: a whole-store read grew with the square of the store (at 120,000 events,
    a quarter of verify's time went to those sorts). Every read of the pass has an index in the
    order it asks for, so no sort is needed; SQLite's planner reads those indexes itself."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_sort = off")


# A leaf hash no event has (RFC 6962 leaves are SHA-256 of 0x00 || …, this is of 0xff || …):
# where an event's row cannot be read as one, the tree and chain take this in its place, so
# its checkpoint's root differs as it would for any altered event.
def unreadable_leaf(nid: int) -> bytes:
    return hashlib.sha256(b"\xff" + str(nid).encode("ascii")).digest()

Checked = tuple[list[VerificationFailure], float]  # a chunk's failures, and the seconds it took


def _timed(check: Callable[[Sequence[Row]], list[VerificationFailure]],
           rows: Sequence[Row]) -> Checked:
    started = time.perf_counter()
    return check(rows), time.perf_counter() - started


def _init_checker(parent: int, registry: KeyRegistry) -> None:
    die_with_parent(parent)  # a killed verify leaves no checker waiting for work for ever
    init_worker(registry)


def _timed_in_worker(rows: Sequence[Row]) -> Checked:
    return _timed(check_rows_in_worker, rows)


@dataclass
class VerifyReport:
    ok: bool = True
    events: int = 0
    checkpoints: int = 0
    failure_count: int = 0
    failures: list[VerificationFailure] = field(default_factory=list)
    uncheckpointed: int = 0
    last_checkpoint_size: int | None = None
    trust: str = ""
    # how busy the signature checkers were while the events were read (``make bench``): their
    # summed time in checks, their number, and the wall time of the pass over the events
    checking_seconds: float = 0.0
    checkers: int = 0
    pass_seconds: float = 0.0

    @property
    def checkers_busy_share(self) -> float:
        capacity = self.checkers * self.pass_seconds
        return self.checking_seconds / capacity if capacity else 0.0

    @property
    def first_failure(self) -> VerificationFailure | None:
        return self.failures[0] if self.failures else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "failures": [f.as_dict() for f in self.failures],
            "failure_count": self.failure_count,
            "uncheckpointed_events": self.uncheckpointed,
            "last_checkpoint_size": self.last_checkpoint_size,
            "trust": self.trust,
        }


class _Failures:
    """Failures in notification order (then check order), keeping the first thousand."""

    def __init__(self) -> None:
        self.items: list[tuple[float, int, VerificationFailure]] = []
        self.count = 0

    def add(self, failure: VerificationFailure) -> None:
        self.count += 1
        nid = failure.notification_id
        self.items.append((float("inf") if nid is None else nid, RANK[failure.check], failure))
        if len(self.items) > 2 * MAX_FAILURES_KEPT:
            self.items.sort(key=lambda t: (t[0], t[1]))
            del self.items[MAX_FAILURES_KEPT:]

    def sorted(self) -> list[VerificationFailure]:
        self.items.sort(key=lambda t: (t[0], t[1]))
        return [f for _, _, f in self.items[:MAX_FAILURES_KEPT]]


@dataclass
class _Checkpoints:
    """Checkpoint rows in sequence, closed as the recomputed tree reaches their size."""

    rows: Iterator[Any]
    pending: Any = None
    previous: tuple[int, Checkpoint] | None = None
    closed: int = 0
    last_size: int | None = None

    def __post_init__(self) -> None:
        self.pending = next(self.rows, None)

    def advance(self) -> None:
        self.pending = next(self.rows, None)


def _placeholder(conn: Connection) -> str:
    """The driver's parameter mark, for the SQL this module hands the driver itself."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


class LedgerVerifier:
    """Runs every check over one store; ``run()`` returns the report."""

    def __init__(self, engine: Engine, events_table: Table, *,
                 trusted_platform_keys: Sequence[bytes] | None = None,
                 progress: Callable[[int], None] | None = None,
                 workers: int | None = None, processes: bool | None = None,
                 signed_record: Checkpoint | None = None) -> None:
        self.engine = engine
        self.events = events_table
        self.trusted = trusted_platform_keys
        self.progress = progress
        self.workers = workers or os.cpu_count() or 1
        self.processes = processes  # None: decide by the size of the store
        self.failures = _Failures()
        self.recomputed_map = chain_map.ChainMap()
        # the platform signer's own record of the last checkpoint it signed (beside its key)
        self.signed_record = signed_record
        self._record_root: bytes | None = None
        self._time_floor = ""  # the latest event time of the windows already closed
        self._time_floor_tolerated = ""  # less the time a writer may wait for the lock
        self._window_latest = ""
        self._checking_seconds = 0.0

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.events)).scalar() or 0)

    def run(self) -> VerifyReport:
        report = VerifyReport()
        with self.engine.connect() as conn:
            try:
                self._run(conn, report)
            except UNREADABLE as exc:
                if not unreadable(exc):
                    raise
                # A value no check expects (SQLite keeps any value in any column) is a finding
                # about the store, not a reason to end without a report.
                self.failures.add(MalformedStore(
                    f"the store holds a value the checks cannot read ({type(exc).__name__}: "
                    f"{exc}); verify stopped there: the checks after it were not run"))
        report.failure_count = self.failures.count
        report.failures = self.failures.sorted()
        report.ok = self.failures.count == 0
        return report

    def _run(self, conn: Connection, report: VerifyReport) -> None:
        read_in_key_order(conn)
        # Checkpoints first, then the events' upper bound: every checkpoint read is then about
        # events at or below that bound, even while others keep writing. The bound covers what
        # the log index names too, so deleted events are still seen.
        last_seq = conn.execute(select(func.max(tables.checkpoints.c.seq))).scalar() or 0
        integer_ids = ("WHERE typeof(notification_id) = 'integer'"
                       if conn.dialect.name == "sqlite" else "")
        max_id = max(conn.execute(select(func.max(self.events.c.id))).scalar() or 0,
                     conn.exec_driver_sql(f"SELECT max(notification_id) FROM {tables.log.name} "
                                          f"{integer_ids}").scalar() or 0)
        registry = self._check_registry(conn, max_id, report)
        # checks 6 and 9 run inside the pass, while its signature checkers are busy
        report.events = self._check_events(conn, registry, max_id, last_seq, report)

    # -- reading ----------------------------------------------------------------------------

    def _raw_id(self) -> Any:
        # The driver's own value (bytes or text): converting each id to a UUID object and back
        # to text costs more than hashing the event.
        return type_coerce(self.events.c.originator_id, NullType()).label("originator_id")

    def _pages(self, conn: Connection, query: str, after: Any, *bound: int
               ) -> Iterator[Sequence[Any]]:
        """Pages of ``query`` (its key first, ``{}`` where the parameters go), key after key.

        In the driver's own SQL, values and rows (plain tuples, on a cursor of the driver's):
        through SQLAlchemy's statement and column types the two reads took about a fifth of the
        parent's time in a whole-store verify, twice what the driver takes, and its result rows
        another 2 µs an event."""
        mark = _placeholder(conn)
        sql = query.format(*[mark] * (1 + len(bound)))
        cursor = conn.connection.cursor()
        try:
            while True:
                cursor.execute(sql, (after, *bound))
                page = cursor.fetchall()
                if page:
                    yield page
                if len(page) < PAGE:
                    return
                after = page[-1][0]
        finally:
            cursor.close()

    def _event_rows(self, conn: Connection, max_id: int) -> Iterator[Sequence[Any]]:
        # ids and the 16 bytes (SQLite) or text (PostgreSQL) of the originator id as stored:
        # converting each to a UUID object and back to text costs more than hashing the event
        return self._pages(conn, self.event_pages(conn.dialect), 0, max_id)

    def event_pages(self, dialect: Dialect) -> str:
        """The pass's read of the events: a page after a key (``{}``: the key, the bound)."""
        return (f"SELECT id, {_oid(self.events, dialect)}, originator_version, topic, state, "
                f"{well_typed(dialect.name, EVENT_COLUMNS)} FROM {self.events.name} "
                f"WHERE id > {{}} AND id <= {{}} ORDER BY id LIMIT {PAGE}")

    @staticmethod
    def log_pages(dialect: Dialect) -> str:
        """The pass's read of the log index: a page after a position (``{}``)."""
        return (f"SELECT position, notification_id, {_oid(tables.log, dialect)}, "
                f"originator_version, leaf_hash, stream, subject, "
                f"{well_typed(dialect.name, LOG_COLUMNS)} FROM {tables.log.name} "
                f"WHERE position > {{}} ORDER BY position LIMIT {PAGE}")

    def _log_rows(self, conn: Connection, max_id: int) -> Iterator[Any]:
        for page in self._pages(conn, self.log_pages(conn.dialect), -1):
            for row in page:
                if not row[7]:
                    self.failures.add(MalformedStore(
                        mistyped(tables.log.name, LOG_COLUMNS, row[:7]),
                        row[1] if isinstance(row[1], int) else None))
                elif row[1] <= max_id:
                    yield row

    def _checkpoint_rows(self, conn: Connection, last_seq: int) -> Iterator[Any]:
        c = tables.checkpoints
        after = 0
        while True:
            page = conn.execute(
                select(c).where(c.c.seq > after, c.c.seq <= last_seq).order_by(c.c.seq)
                .limit(PAGE)
            ).all()
            if not page:
                return
            yield from page
            after = page[-1].seq

    # -- check 1 ----------------------------------------------------------------------------

    def _check_registry(self, conn: Connection, max_id: int, report: VerifyReport) -> KeyRegistry:
        e = self.events
        rows = conn.execute(
            select(e.c.id, self._raw_id(), e.c.originator_version, e.c.topic, e.c.state)
            .where(e.c.topic.in_(REGISTRY_TOPICS), e.c.id <= max_id).order_by(e.c.id)
        )
        registry, failures, report.trust = check_registry(
            ((r[0], oid_text(r[1]), r[2], r[3], bytes(r[4])) for r in rows), self.trusted)
        for failure in failures:
            self.failures.add(failure)
        return registry

    # -- checks 2-5, 7, 8: one pass over the events ------------------------------------------

    def _executor(self, registry: KeyRegistry, max_id: int) -> tuple[Executor, Callable[..., Any]]:
        use_processes = self.processes if self.processes is not None else (
            max_id >= PROCESSES_FROM and self.workers > 1)
        if use_processes:
            pool = ProcessPoolExecutor(max_workers=self.workers,
                                       mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_checker, initargs=(os.getpid(), registry))
            return pool, _timed_in_worker
        checker = EventChecker(registry)
        return (ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="credit-verify"),
                partial(_timed, checker.check_rows))

    def _check_events(self, conn: Connection, registry: KeyRegistry, max_id: int,
                      last_seq: int, report: VerifyReport) -> int:
        tree = merkle.CompactRange()
        recomputed_map = self.recomputed_map = chain_map.ChainMap()
        checkpoints = _Checkpoints(self._checkpoint_rows(conn, last_seq))
        log_rows = self._log_rows(conn, max_id)
        logged = next(log_rows, None)
        leaf_hash, header_fields = envelope.leaf_hash, envelope.header_fields
        fail = self.failures.add
        last_nid: int | None = None
        seen = 0
        pool, check_rows = self._executor(registry, max_id)
        futures: list[Future[Checked]] = []
        started = time.perf_counter()
        try:
            self._close_checkpoints(conn, registry, checkpoints, tree, recomputed_map, last_nid)
            for page in self._event_rows(conn, max_id):
                chunk: list[Row] = []
                for nid, raw_oid, version, topic, state, typed in page:
                    at: str | None
                    payload: bytes | None
                    if typed:
                        oid = oid_text(raw_oid)
                        state = bytes(state)
                        leaf = leaf_hash(oid, version, topic, state)
                        try:
                            _, at, _, payload = header_fields(state)
                        except ValueError:  # the envelope check reports it
                            at = payload = None
                    else:  # named here; checked no further, and its checkpoint's root differs
                        fail(MalformedStore(mistyped(self.events.name, EVENT_COLUMNS,
                                                        (raw_oid, version, topic, state)), nid))
                        oid, version, topic, state = shown(raw_oid), 0, "?", b""
                        leaf, at, payload = unreadable_leaf(nid), None, None
                    while logged is not None and logged[1] < nid:
                        self._missing(logged)
                        logged = next(log_rows, None)
                    if logged is None or logged[1] != nid:
                        fail(LogMismatch("not in the ledger's log index: written outside the "
                                         "ledger", nid, oid, version))
                        recomputed_map.append(chain_map.chain_key(None, "?"), leaf)
                    else:
                        if bytes(logged[4]) != leaf:
                            fail(LogMismatch("differs from the event the ledger logged at "
                                             f"position {logged[0]}", nid, oid, version))
                        filed = check_chain_key(nid, oid, version, topic, payload, logged[5],
                                                logged[6])
                        if filed is not None:
                            fail(LogMismatch(filed, nid, oid, version))
                        recomputed_map.append(chain_map.chain_key(logged[6], logged[5]), leaf)
                        logged = next(log_rows, None)
                    tree.append(leaf)
                    last_nid = nid
                    if at is not None:
                        self._check_time(nid, oid, version, at)
                    if (self.signed_record is not None
                            and tree.size == self.signed_record.tree_size):
                        self._record_root = tree.root()
                    if typed:
                        chunk.append((nid, oid, version, topic, state))
                    if checkpoints.pending is not None and checkpoints.pending.tree_size == tree.size:
                        self._close_checkpoints(conn, registry, checkpoints, tree, recomputed_map,
                                                last_nid)
                futures.extend(pool.submit(check_rows, chunk[i:i + CHUNK])
                               for i in range(0, len(chunk), CHUNK))
                if not seen:
                    # Worker processes take about half a second to start (each imports
                    # cryptography), which this process would spend waiting for them.
                    self.check_versions(conn, max_id)
                seen += len(page)
                # Back-pressure: reading runs far ahead of checking signatures, and unchecked
                # pages waiting in memory would make memory grow with the store.
                self._collect(futures, wait=False, keep=IN_FLIGHT * self.workers)
                if self.progress is not None:
                    self.progress(seen)
            if not seen:
                self.check_versions(conn, max_id)
            # the chain index is compared while the last chunks' signatures are checked
            self.check_chains(conn, tree.size)
            self._collect(futures, wait=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        report.pass_seconds = time.perf_counter() - started
        report.checkers = self.workers
        report.checking_seconds = self._checking_seconds
        while logged is not None:
            self._missing(logged)
            logged = next(log_rows, None)
        while checkpoints.pending is not None:
            fail(CheckpointInvalid(
                f"checkpoint {checkpoints.pending.seq} covers {checkpoints.pending.tree_size} "
                f"events, but the store holds {tree.size}: events are missing from the end"))
            checkpoints.closed += 1
            checkpoints.advance()
        report.checkpoints = checkpoints.closed
        report.last_checkpoint_size = checkpoints.last_size
        report.uncheckpointed = tree.size - (checkpoints.last_size or 0)
        self._check_signed_record(tree.size)
        return tree.size

    def _check_time(self, nid: int, oid: str, version: int, at: str) -> None:
        """An event is not recorded before any event of an earlier checkpoint's batch (times
        in the envelope's fixed format compare as text)."""
        if at < self._time_floor_tolerated:
            self.failures.add(TimeWentBack(f"recorded at {at}, before {self._time_floor}, the "
                                           "time of an event committed before it", nid, oid,
                                           version))
        if at > self._window_latest:
            self._window_latest = at

    def _close_time_window(self, checkpoint: Checkpoint, seq: int, last_nid: int | None,
                           previous: Checkpoint | None) -> None:
        issued = envelope.format_instant(checkpoint.issued_at)
        if self._window_latest > issued:
            self.failures.add(TimeWentBack(f"checkpoint {seq} is dated {issued}, before the "
                                           f"event recorded at {self._window_latest} it covers",
                                           last_nid))
        if previous is not None and checkpoint.issued_at <= previous.issued_at:
            self.failures.add(TimeWentBack(
                f"checkpoint {seq} is dated {issued}, not after the checkpoint before it "
                f"({envelope.format_instant(previous.issued_at)})", last_nid))
        self._time_floor = max(self._time_floor, self._window_latest)
        if self._time_floor:
            self._time_floor_tolerated = envelope.format_instant(
                envelope.parse_instant(self._time_floor) - TIME_TOLERANCE)

    def _check_signed_record(self, size: int) -> None:
        record = self.signed_record
        if record is None:
            return
        signed = (f"the platform's signer signed a checkpoint of {record.tree_size} events (root "
                  f"{b64(record.root_hash)}) at {envelope.format_instant(record.issued_at)}")
        if size < record.tree_size:
            self.failures.add(RolledBack(f"the store holds {size} events, but {signed}: the "
                                         "store was rolled back or truncated"))
        elif record.tree_size and self._record_root != record.root_hash:
            self.failures.add(RolledBack(f"the store's first {record.tree_size} events have "
                                         f"another root than {signed}: the store was rewritten"))

    def _missing(self, logged: Any) -> None:
        position, nid, raw_oid, version = logged[:4]
        self.failures.add(LogMismatch(
            f"missing from the event store (the log holds it at position {position})",
            nid, oid_text(raw_oid), version))

    def _collect(self, futures: list[Future[Checked]], *, wait: bool,
                 keep: int | None = None) -> None:
        """Take finished results in order; with ``wait`` all, with ``keep`` until at most that
        many are still pending."""
        while futures and (wait or futures[0].done() or (keep is not None and len(futures) > keep)):
            failures, seconds = futures.pop(0).result()
            self._checking_seconds += seconds
            for failure in failures:
                self.failures.add(failure)

    def _close_checkpoints(self, conn: Connection, registry: KeyRegistry,
                           checkpoints: _Checkpoints, tree: merkle.CompactRange,
                           recomputed_map: chain_map.ChainMap, last_nid: int | None) -> None:
        root = tree.root()
        chain_root = recomputed_map.root()
        while checkpoints.pending is not None and checkpoints.pending.tree_size == tree.size:
            row = checkpoints.pending
            columns = (row.tree_size, bytes(row.root_hash), row.kid, row.issued_at)
            current, failures = check_stored_checkpoint(registry, row.seq, row.note, columns,
                                                        root, last_nid, chain_root)
            if current is not None and checkpoints.previous is not None and failures:
                # tell an inconsistent checkpoint apart from altered events
                inconsistent = check_stored_consistency(
                    checkpoints.previous[1], current, row.seq, checkpoints.previous[0],
                    stored_nodes(conn), last_nid)
                if inconsistent:
                    failures.append(inconsistent)
            for failure in failures:
                self.failures.add(failure)
            if current is not None:
                self._close_time_window(current, row.seq, last_nid,
                                        checkpoints.previous[1] if checkpoints.previous else None)
            if not failures and current is not None:
                checkpoints.previous = (row.seq, current)
            checkpoints.closed += 1
            checkpoints.last_size = tree.size
            checkpoints.advance()

    # -- check 6 ----------------------------------------------------------------------------

    def check_versions(self, conn: Connection, max_id: int) -> None:
        """Each aggregate's versions run 1, 2, 3 …, and the log files them all under the chain
        of its first.

        An aggregate of one event holds both rules when that event is version 1, so one grouped
        scan of the aggregate index (in the database, about a tenth of the cost of reading
        every event here) names the aggregates that need reading: those of several events, or
        whose lowest version is not 1. Their events are then read in order, a page of
        aggregates at a time (flat memory)."""
        events = self.events.name
        mark = _placeholder(conn)
        grouped = (f"SELECT originator_id FROM {events} WHERE id <= {mark} {{}}"
                   "GROUP BY originator_id "
                   "HAVING count(*) > 1 OR min(originator_version) <> 1 "
                   f"ORDER BY originator_id LIMIT {AGGREGATES_PAGE}")
        after: Any = None
        while True:
            if after is None:
                page = conn.exec_driver_sql(grouped.format(""), (max_id,)).all()
            else:
                page = conn.exec_driver_sql(grouped.format(f"AND originator_id > {mark} "),
                                            (max_id, after)).all()
            if page:
                self._check_aggregates(conn, [raw_oid for (raw_oid,) in page], max_id)
            if len(page) < AGGREGATES_PAGE:
                return
            after = page[-1][0]

    def _check_aggregates(self, conn: Connection, raw_oids: list[Any], max_id: int) -> None:
        e, log = self.events, tables.log
        raw_oid_column = self._raw_id()
        rows = conn.execute(
            select(raw_oid_column, e.c.originator_version, e.c.id, log.c.position, log.c.subject)
            .select_from(e.outerjoin(log, log.c.notification_id == e.c.id))
            .where(raw_oid_column.in_(raw_oids), e.c.id <= max_id)
            .order_by(e.c.originator_id, e.c.originator_version)
        )
        current: Any = None
        expected = 1
        first_subject: str | None = None
        for raw_oid, version, nid, position, subject in rows:
            if not isinstance(version, int):
                continue  # the pass names the row (SQLite keeps any value in any column)
            if raw_oid != current:
                current, expected, first_subject = raw_oid, 1, subject
            if version != expected:
                missing = (f"version {expected} is missing" if version > expected
                           else f"version {version} appears twice")
                self.failures.add(VersionsBroken(
                    f"versions are not contiguous: {missing} before version {version}",
                    nid, oid_text(raw_oid), version))
            elif position is not None and subject != first_subject:
                self.failures.add(VersionsBroken(
                    f"the log files it under subject {subject!r}, the aggregate's first event "
                    f"under {first_subject!r}", nid, oid_text(raw_oid), version))
            expected = version + 1

    # -- check 9 ----------------------------------------------------------------------------

    @staticmethod
    def _stored_chains(conn: Connection) -> Iterator[Sequence[Any]]:
        """The stored chain index, a range of CHAIN_BUCKETS buckets a query: its key is
        ``(bucket, chain)``, so a page by chain alone would scan the table each time."""
        mark = _placeholder(conn)
        cursor = conn.connection.cursor()
        try:
            for start in range(0, chain_map.BUCKETS, CHAIN_BUCKETS):
                cursor.execute("SELECT chain, key_hash, bucket, length, head, position FROM "
                               f"{tables.chains.name} WHERE bucket >= {mark} AND bucket < {mark}",
                               (start, start + CHAIN_BUCKETS))
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def check_chains(self, conn: Connection, size: int) -> None:
        """The stored chain index equals the one recomputed from the events (when nothing was
        written during the run: a live ledger moves on, and is checked the next time)."""
        recomputed = self.recomputed_map
        rows = self._stored_chains(conn)
        seen = 0
        differing: list[str] = []
        for chain, hkey, bucket, length, head, position in rows:
            if position >= size:
                return  # written after this run's bound
            expected_hkey = chain_map.key_hash(chain)
            state = recomputed.buckets.get(chain_map.bucket_of(expected_hkey), {}).get(expected_hkey)
            if (bytes(hkey) != expected_hkey or bucket != chain_map.bucket_of(expected_hkey)
                    or state != (length, bytes(head))):
                differing.append(chain)
            if state is not None:
                seen += 1
        for chain in differing:
            self.failures.add(ChainIndexMismatch(
                f"chain {mask_subject_key(chain)}: the stored chain index differs from the chain "
                "of its events"))
        total = sum(len(entries) for entries in recomputed.buckets.values())
        if seen != total:
            self.failures.add(ChainIndexMismatch(
                f"the stored chain index lacks {total - seen} of {total} chains"))
        stored_root = conn.execute(select(tables.chain_map.c.hash).where(
            tables.chain_map.c.level == chain_map.DEPTH)).scalar()
        if (stored_root is None and total) or (
                stored_root is not None and bytes(stored_root) != recomputed.root()):
            self.failures.add(ChainIndexMismatch(
                "the stored chain map root differs from the recomputed one"))
