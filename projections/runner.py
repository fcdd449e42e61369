"""The projection runner: reads the log in batches and keeps the read models current.

Every step is one transaction on the projection database: it locks the projection's row in
``proj_positions``, applies one batch, and writes the new position with the rows, so each event is
applied exactly once, also after a crash (a failed step leaves nothing behind). Steps first
recompute subjects whose state changed by time alone (``changes_on`` passed), then apply the next
batch of events. eventsourcing has no SQLite subscriptions, so the runner polls; on PostgreSQL
``follow`` also wakes on the events table's NOTIFY.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import random
import select as io_select
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, Index, create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.schema import CreateTable

from domain.clock import naive_utc
from domain.identifiers import mask_subject_key
from domain.records import today_in_china
from domain.state import Fact
from keys.signer import b64, fingerprint
from ledger import tables as ledger_tables
from ledger.application import EVENTS_TABLE, CreditLedger
from ledger.collector import few_collections
from ledger.fact_queries import iter_subject_facts, read_facts_of
from ledger.processes import die_with_parent
from ledger.recorder import LedgerCorrupted
from ledger.storage import prepare_database
from projections.schema import TABLES, faults, positions, positions_metadata, tables_of
from projections.subjects import RowBuffer, rows_of, states
from proofs.registry_replay import RegistryReplay

BATCH = 5000
DUE_BATCH = 1000
Progress = Callable[[int], None]


# Errors a subject's data causes (a value the database refuses — PostgreSQL's NUL is a
# ValueError —, a reducer that cannot read it): recorded as faults. Anything else (a lost
# connection, a crash, an interrupt) is no fault of the data: it propagates, and the step is
# rolled back whole to be done again.
POISON: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError, ArithmeticError,
                                           DataError, IntegrityError)


@dataclass
class Step:
    position: int
    applied: int  # events (or checkpoints) applied; 0 when caught up
    refreshed: int = 0  # subjects recomputed because their day came


class ProjectionRunner:
    """Runs the ledger's projections: ``catch_up``, ``follow``, ``rebuild``."""

    @classmethod
    def for_ledger(cls, ledger: CreditLedger) -> ProjectionRunner:
        """The runner of the ledger's read models, where its settings keep them."""
        url = ledger.settings.projections_url
        return cls(ledger, create_engine(prepare_database(url)) if url else None)

    def __init__(self, ledger: CreditLedger, engine: Engine | None = None) -> None:
        self.ledger = ledger
        self.engine: Engine = engine if engine is not None else ledger.engine
        self.shared = engine is None or engine.url == ledger.engine.url
        self.events = ledger.recorder.events_table
        self._set_up = False  # the positions table and every projection's generation exist

    # -- set-up and status --------------------------------------------------------------------

    def setup(self) -> None:
        """Create the positions table and, for a projection never run, generation 1."""
        positions_metadata.create_all(self.engine, checkfirst=True)
        for name in TABLES:
            with self.engine.begin() as conn:
                exists = conn.execute(select(positions.c.name).where(positions.c.name == name))
                if exists.first() is None:
                    self._create(conn, name, 1)
                    self._point_views(conn, name, 1)
                    conn.execute(insert(positions).values(
                        name=name, generation=1, position=-1, as_of=None,
                        updated_at=_now()))
        self._set_up = True

    def status(self) -> list[dict[str, Any]]:
        self.setup()
        with self.engine.connect() as conn:
            rows = conn.execute(select(positions).order_by(positions.c.name)).mappings().all()
        with self.ledger.engine.connect() as reader:
            ends = _ends(reader)
        return [{**row, "behind": max(ends[row["name"]] - row["position"], 0)} for row in rows]

    # -- running ------------------------------------------------------------------------------

    def catch_up(self, names: list[str] | None = None, today: date | None = None,
                 progress: Progress | None = None) -> dict[str, int]:
        """Apply everything written so far; return each projection's position.

        One read first finds which projections have anything to do (the common case after a
        single write: the subjects and the keys, one event each); those are stepped together in
        one transaction while each step is short of a batch, so a write costs one read and one
        read-model transaction, not a locking transaction per projection."""
        if not self._set_up:
            self.setup()
        self.ledger.refresh()
        day = today or today_in_china()
        wanted = names or list(TABLES)
        result, behind = self._behind(wanted, day)
        done = dict.fromkeys(wanted, 0)
        while behind:
            for name, step in self._steps(behind, day).items():
                done[name] += step.applied
                if progress is not None and step.applied:
                    progress(done[name])
            # asked again, not inferred: a step can make subjects due (a new policy version)
            result, behind = self._behind(wanted, day)
        return result

    def _behind(self, names: list[str], today: date) -> tuple[dict[str, int], list[str]]:
        """(each projection's position, the names with anything to apply or recompute today),
        read without taking a lock."""
        with self.engine.connect() as conn:
            rows = {row["name"]: row for row in conn.execute(
                select(positions).where(positions.c.name.in_(names))).mappings()}
            due: set[str] = set()
            subjects = rows.get("subjects")
            if subjects is not None:
                table = tables_of("subjects", int(subjects["generation"]))["proj_subjects"]
                if conn.execute(select(table.c.subject).where(table.c.changes_on <= today)
                                .limit(1)).first() is not None:
                    due.add("subjects")
            with self._reader(conn) as reader:
                ends = _ends(reader)
        positions_now = {name: int(row["position"]) for name, row in rows.items()}
        behind = [name for name in names if name not in rows or name in due
                  or positions_now[name] < ends[name] or rows[name]["as_of"] != today]
        return positions_now, behind

    def _steps(self, names: list[str], today: date) -> dict[str, Step]:
        """One step of each projection named, in one transaction (rows locked in a fixed
        order); if the subjects' data fails, each is stepped alone, faults isolated."""
        try:
            with self.engine.begin() as conn:
                return {name: self._apply(conn, name, today) for name in sorted(names)}
        except POISON:
            if "subjects" not in names:
                raise
        return {name: self.step(name, today) for name in sorted(names)}

    def _apply(self, conn: Connection, name: str, today: date) -> Step:
        generation, position, as_of = self._lock(conn, name)
        with self._reader(conn) as reader:
            step = PROJECTORS[name](self, conn, reader, tables_of(name, generation),
                                    position, as_of, today)
        conn.execute(update(positions).where(positions.c.name == name).values(
            position=step.position, as_of=today, updated_at=_now()))
        return step

    def step(self, name: str, today: date) -> Step:
        """One transaction: lock, apply one batch (or recompute due subjects), move the position.
        A batch the subjects projection cannot store is done again subject by subject, and
        what still fails is recorded as a fault and skipped: a read model never blocks."""
        try:
            with self.engine.begin() as conn:
                step = self._apply(conn, name, today)
        except POISON:
            if name != "subjects":
                raise
            return self._step_isolating_faults(today)
        return step

    def _step_isolating_faults(self, today: date) -> Step:
        with self.engine.connect() as conn:
            row = conn.execute(select(positions).where(positions.c.name == "subjects")
                               ).mappings().one()
        generation, position = int(row["generation"]), int(row["position"])
        tables = tables_of("subjects", generation)
        log = ledger_tables.log
        with self.ledger.engine.connect() as reader:
            rows = reader.execute(select(log.c.position, log.c.subject).where(
                log.c.position > position).order_by(log.c.position).limit(BATCH)).all()
        if not rows:
            raise LedgerCorrupted("the subjects read model failed with no event to apply")
        until = rows[-1][0]
        for subject in sorted({s for _, s in rows if s}):
            try:
                with self.engine.begin() as conn, self._reader(conn) as reader:
                    _recompute(self, conn, reader, tables, [subject], until, today)
            except POISON as exc:  # recorded, named, and skipped
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:480]
                with self.engine.begin() as conn:
                    conn.execute(delete(faults).where(faults.c.projection == "subjects",
                                                      faults.c.subject == subject))
                    conn.execute(insert(faults).values(
                        projection="subjects", subject=subject, position=until,
                        reason=f"{type(exc).__name__}: {reason}", recorded_at=_now()))
        with self.engine.begin() as conn:
            conn.execute(update(positions).where(positions.c.name == "subjects").values(
                position=until, as_of=today, updated_at=_now()))
        return Step(until, len(rows))

    def faults(self) -> list[dict[str, Any]]:
        """What the read models could not store (masked subjects)."""
        self.setup()
        with self.engine.connect() as conn:
            rows = conn.execute(select(faults).order_by(faults.c.position)).mappings().all()
        return [{**row, "subject": mask_subject_key(row["subject"])} for row in rows]

    def follow(self, names: list[str] | None = None, interval: float = 1.0,
               stop: Callable[[], bool] | None = None) -> None:
        """Catch up for ever: poll every ``interval`` seconds, or wake on PostgreSQL's NOTIFY."""
        with self._notifications() as wait:
            while not (stop and stop()):
                self.catch_up(names)
                wait(interval)

    def rebuild(self, name: str, today: date | None = None, progress: Progress | None = None,
                workers: int | None = None) -> Step:
        """Build a new generation from scratch while the live one serves, then switch to it.

        ``workers``: processes filling the subjects (None: one per CPU, on a store of
        ``PARALLEL_FROM`` events or more). A generation left half built by a killed rebuild is
        dropped here before it is built again."""
        self.setup()
        self.ledger.refresh()
        ledger_tables.upgrade_subject_index(self.ledger.engine)  # the fill reads through it
        day = today or today_in_china()
        with self.engine.begin() as conn:
            generation, _, _ = self._lock(conn, name)
            new = generation + 1
            self._drop(conn, name, new)
            self._create(conn, name, new, indexed=False)
        fresh = tables_of(name, new)
        with self.ledger.engine.connect() as reader:
            start = _ends(reader)[name]
        FILLERS[name](self, fresh, start, day, progress, workers)
        self._index(name, new)
        with self.engine.begin() as conn:
            self._lock(conn, name)
            position = start
            with self._reader(conn) as reader:
                while True:  # what was written during the fill: applied before the switch
                    step = PROJECTORS[name](self, conn, reader, fresh, position, day, day)
                    position = step.position
                    if step.applied == 0 and step.refreshed == 0:
                        break
            self._point_views(conn, name, new)
            self._drop(conn, name, generation)
            conn.execute(delete(faults).where(faults.c.projection == name))  # all stored now
            conn.execute(update(positions).where(positions.c.name == name).values(
                generation=new, position=position, as_of=day, updated_at=_now()))
        return Step(position, 0)

    # -- plumbing -----------------------------------------------------------------------------

    def _lock(self, conn: Connection, name: str) -> tuple[int, int, date | None]:
        if conn.dialect.name == "sqlite":
            # a write first: SQLite takes its write lock before anything is read
            conn.execute(update(positions).where(positions.c.name == name)
                         .values(updated_at=_now()))
            query = select(positions).where(positions.c.name == name)
        else:
            query = select(positions).where(positions.c.name == name).with_for_update()
        row = conn.execute(query).mappings().one()
        return int(row["generation"]), int(row["position"]), row["as_of"]

    @contextmanager
    def _reader(self, conn: Connection) -> Iterator[Connection]:
        """Where the ledger is read from: the same transaction when the read models live in the
        ledger's database, else a connection to the ledger."""
        if self.shared:
            yield conn
        else:
            with self.ledger.engine.connect() as reader:
                yield reader

    def _create(self, conn: Connection, name: str, generation: int, *,
                indexed: bool = True) -> None:
        """A generation's tables; a rebuild's with only the indexes its fill writes in key
        order (``_index`` adds the others once it is filled): the inserts then append to each
        table and index instead of landing at random in the indexes of ids (SQLite, a million
        events: 41.6 -> 31.3 us an event, one worker)."""
        for table in tables_of(name, generation).values():
            if indexed:
                table.create(conn, checkfirst=True)
                continue
            conn.execute(CreateTable(table))
            for index in table.indexes:
                if _in_fill_order(index):
                    index.create(conn)

    def _index(self, name: str, generation: int) -> None:
        """Create a filled generation's other indexes, each in a transaction of its own (a
        write lock held for one index at a time). A duplicate key is refused here, as the
        insert would have refused it, and the rebuild fails before anything is switched."""
        for table in tables_of(name, generation).values():
            for index in sorted(table.indexes, key=lambda index: str(index.name)):
                if not _in_fill_order(index):
                    with self.engine.begin() as conn, _sorting_in_little_memory(conn):
                        index.create(conn)

    def _drop(self, conn: Connection, name: str, generation: int) -> None:
        with _freed_pages_not_overwritten(conn):
            for table in tables_of(name, generation).values():
                table.drop(conn, checkfirst=True)

    def _point_views(self, conn: Connection, name: str, generation: int) -> None:
        for view, table in tables_of(name, generation).items():
            conn.execute(text(f"DROP VIEW IF EXISTS {view}"))
            conn.execute(text(f"CREATE VIEW {view} AS SELECT * FROM {table.name}"))

    @contextmanager
    def _notifications(self) -> Iterator[Callable[[float], None]]:
        engine = self.ledger.engine
        if engine.dialect.name != "postgresql":
            yield time.sleep
            return
        with engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            raw.set_isolation_level(0)  # autocommit: LISTEN takes effect at once
            cursor = raw.cursor()
            cursor.execute(f"LISTEN {self.ledger.recorder.channel_name}")

            def wait(timeout: float) -> None:
                if io_select.select([raw], [], [], timeout)[0]:
                    raw.poll()
                    raw.notifies.clear()

            yield wait

    # -- auditing ------------------------------------------------------------------------------

    def audit(self, sample: int | None = None) -> tuple[int, list[str]]:
        """Recompute the subjects' read-model rows from the log (all subjects, or ``sample`` of
        them at random) at the projection's own position and day, and name every row that
        differs from what is stored: (subjects checked, differences). `credit rebuild` repairs
        them."""
        self.setup()
        with self.engine.connect() as conn:
            row = conn.execute(select(positions).where(positions.c.name == "subjects")
                               ).mappings().one()
            generation, position, as_of = int(row["generation"]), int(row["position"]), row["as_of"]
            tables = tables_of("subjects", generation)
            stored_subjects = {s for (s,) in conn.execute(select(tables["proj_subjects"].c.subject))}
        if position < 0 or as_of is None:
            return 0, []
        log = ledger_tables.log
        with self.ledger.engine.connect() as reader:
            logged = {s for (s,) in reader.execute(
                select(log.c.subject).where(log.c.subject.is_not(None),
                                            log.c.position <= position).distinct())}
        problems = [f"subject {mask_subject_key(s)}: in the read models, no event in the log"
                    for s in sorted(stored_subjects - logged)]
        problems += [f"subject {mask_subject_key(s)}: in the log, missing from the read models"
                     for s in sorted(logged - stored_subjects)]
        chosen = sorted(logged & stored_subjects)
        if sample is not None and sample < len(chosen):
            chosen = sorted(random.SystemRandom().sample(chosen, sample))
        policy = self.policy_facts(position)
        for start in range(0, len(chosen), 200):
            chunk = chosen[start:start + 200]
            with self.ledger.engine.connect() as reader:
                facts = read_facts_of(reader, self.events, chunk, until=position)
            expected: dict[str, list[tuple[str, str]]] = {}
            for state in states(facts, policy, as_of):
                for table_name, rows in rows_of(state).items():
                    expected.setdefault(table_name, []).extend(
                        (state["subject"], _row_key(r)) for r in rows)
            with self.engine.connect() as conn:
                for name, table in tables.items():
                    found = [(r["subject"], _row_key(dict(r))) for r in conn.execute(
                        select(table).where(table.c.subject.in_(chunk))).mappings()]
                    problems += _row_differences(name, sorted(expected.get(name, [])),
                                                 sorted(found))
        return len(chosen), problems

    def policy_facts(self, until: int) -> list[Fact]:
        return [f for f in self.ledger.policy_facts if f.position <= until]


def _in_fill_order(index: Index) -> bool:
    """Whether a rebuild's fill writes an index's keys in order: those that lead with the
    subject (each worker writes its subjects in key order, so each appends at one place). Kept
    up during the fill, they cost its workers less than building them after cost the parent
    (SQLite, a million events: the records' subject index took 0.47 s to build)."""
    first = next(iter(index.columns), None)
    return first is not None and first.name == "subject"


def _freed_pages_not_overwritten(conn: Connection) -> AbstractContextManager[None]:
    """SQLite built with SECURE_DELETE (Debian's is) overwrites every page a DROP frees with
    zeros: dropping a million events' generation took 1.8 s with them, 0.2 s without, and the
    switch holds the write lock meanwhile. A generation holds nothing that the ledger, which
    keeps every event, and the generation after it do not hold, so the zeros would hide
    nothing."""
    return _sqlite_pragma(conn, "secure_delete", 0)


def _sorting_in_little_memory(conn: Connection) -> AbstractContextManager[None]:
    """SQLite sorts an index's keys in memory up to the connection's page cache (64 MB on the
    ledger's own connections) before it merges: with SQLite's default of 2 MB, a million
    events' generation was indexed in 1.3 s and 17 MB, against 1.7-1.8 s and 139 MB."""
    return _sqlite_pragma(conn, "cache_size", -2000)


@contextmanager
def _sqlite_pragma(conn: Connection, name: str, value: int) -> Iterator[None]:
    """A SQLite connection's setting changed for a while, set back after (the connection goes
    back to its pool as it came); nothing elsewhere."""
    if conn.dialect.name != "sqlite":
        yield
        return
    was = int(conn.exec_driver_sql(f"PRAGMA {name}").scalar_one())
    conn.exec_driver_sql(f"PRAGMA {name} = {value}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA {name} = {was}")


def _ends(reader: Connection) -> dict[str, int]:
    """Where each projection would be when caught up: the log's last position (subjects and
    keys), the last checkpoint's number (checkpoints); -1 for none."""
    end = reader.execute(select(func.max(ledger_tables.log.c.position))).scalar()
    last = reader.execute(select(func.max(ledger_tables.checkpoints.c.seq))).scalar()
    log_end = -1 if end is None else int(end)
    return {"subjects": log_end, "keys": log_end, "checkpoints": -1 if last is None else int(last)}


# -- the subjects projection -------------------------------------------------------------------


def _subjects_step(runner: ProjectionRunner, conn: Connection, reader: Connection,
                   tables: Mapping[str, Any], position: int, as_of: date | None,
                   today: date) -> Step:
    subjects_table = tables["proj_subjects"]
    # ordered by the indexed day first: ordered by subject alone, SQLite walks the whole table
    # in key order to find none due (6 ms a step at 12,000 subjects)
    due = conn.execute(select(subjects_table.c.subject)
                       .where(subjects_table.c.changes_on <= today)
                       .order_by(subjects_table.c.changes_on, subjects_table.c.subject)
                       .limit(DUE_BATCH)).scalars().all()
    if due:
        _recompute(runner, conn, reader, tables, list(due), position, today)
        return Step(position, 0, len(due))
    log = ledger_tables.log
    rows = reader.execute(select(log.c.position, log.c.subject, log.c.stream)
                          .where(log.c.position > position).order_by(log.c.position)
                          .limit(BATCH)).all()
    if not rows:
        return Step(position, 0)
    until = rows[-1][0]
    subjects = sorted({subject for _, subject, _ in rows if subject})
    if subjects:
        _recompute(runner, conn, reader, tables, subjects, until, today)
    if any(stream == "PolicyVersion" for _, _, stream in rows):
        # a new policy version may change every subject: all of them are due today
        conn.execute(update(subjects_table).values(changes_on=today))
    return Step(until, len(rows))


def _recompute(runner: ProjectionRunner, conn: Connection, reader: Connection,
               tables: Mapping[str, Any], subjects: list[str], until: int, today: date) -> None:
    buffer = RowBuffer(tables)
    facts = read_facts_of(reader, runner.events, subjects, until)
    for state in states(facts, runner.policy_facts(until), today):
        buffer.add(state)
    buffer.write(conn, replace=True)


PARALLEL_FROM = 40_000  # events; below this, starting worker processes costs more than it saves


def _subjects_fill(runner: ProjectionRunner, tables: Mapping[str, Any], until: int, today: date,
                   progress: Progress | None, workers: int | None) -> None:
    """Every subject, streamed through the subject index and written in chunks; on a large store,
    by worker processes, each taking the next range of subject keys when it is done with one."""
    if workers is None:  # the log's length up to ``until``: the subjects' events and a few more
        workers = (os.cpu_count() or 1) if until >= PARALLEL_FROM else 1
    if workers < 2:
        with runner.ledger.engine.connect() as reader:
            fill_subjects(reader, runner.engine, tables, until, today,
                          runner.policy_facts(until), progress=progress)
        return
    ledger_url = runner.ledger.engine.url.render_as_string(hide_password=False)
    target_url = runner.engine.url.render_as_string(hide_password=False)
    generation = int(next(iter(tables.values())).name.rsplit("_g", 1)[1])
    done = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        # The workers start (a process and its imports: 0.7 s) while the ranges are found.
        for _ in range(workers):
            pool.submit(worker_ready)
        policy = runner.policy_facts(until)
        bounds = _subject_bounds(runner, until, workers)
        futures = [pool.submit(fill_range, ledger_url, target_url, generation, until, today,
                               policy, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
        for future in as_completed(futures):
            done += future.result()
            if progress is not None:
                progress(done)


FILL_SAMPLE = 4096  # log positions whose subjects place a parallel fill's range bounds
FILL_LAST_RANGE = 0.005  # of the events: the smallest range a parallel fill hands out


def range_shares(workers: int) -> list[float]:
    """Where a parallel fill cuts its events, as shares of them: each range a ``2 * workers``-th
    of what is left, down to ``FILL_LAST_RANGE`` (0.25, 0.44, 0.58 … for two workers). Handed
    out in turn, the large first ranges keep the workers busy and the small last ones end them
    together: cut into one range a worker, by events, a million events' two workers finished
    up to 2.9 s apart (of 35 s, on PostgreSQL), a subject's cost not being its events'."""
    shares: list[float] = []
    taken = 0.0
    while True:
        taken += max((1 - taken) / (2 * workers), FILL_LAST_RANGE)
        if taken > 1 - FILL_LAST_RANGE / 2:
            return shares
        shares.append(taken)


def _subject_bounds(runner: ProjectionRunner, until: int, workers: int) -> list[str | None]:
    """Subject keys cutting the subjects' events up to ``until`` at ``range_shares`` (None: open
    ended); one range when there are none. The keys are those of the events at FILL_SAMPLE
    evenly spaced log positions, ordered by the database, whose collation decides what a range
    holds: a look-up of a few thousand keys (an offset into the subject index read half of it:
    0.9-2.0 s at a million events on PostgreSQL, growing with the store)."""
    log = ledger_tables.log
    step = max(until, 0) / FILL_SAMPLE
    positions = sorted({round(step * i) for i in range(FILL_SAMPLE)})
    with runner.ledger.engine.connect() as reader:
        keys = reader.execute(select(log.c.subject).where(
            log.c.position.in_(positions), log.c.subject.is_not(None))
            .order_by(log.c.subject)).scalars().all()
    bounds: list[str | None] = [None]
    for share in range_shares(workers) if keys else []:
        key = keys[int(share * len(keys))]
        if key != bounds[-1]:
            bounds.append(key)
    bounds.append(None)
    return bounds


def worker_ready() -> None:
    """A worker's first task: nothing. Unpickling it imports this module in the worker."""


def fill_subjects(reader: Connection, target: Engine, tables: Mapping[str, Any], until: int,
                  today: date, policy: list[Fact], start: str | None = None,
                  stop: str | None = None, progress: Progress | None = None) -> int:
    """Compute and write the subjects in [start, stop); returns the events read."""
    events_table = ledger_tables.events_table(EVENTS_TABLE)
    buffer = RowBuffer(tables)
    seen = 0
    due = FILL_CHUNK  # subjects buffered when the next write is tried
    with few_collections(), _commits_not_waiting_for_the_disk(target) as writer:
        for subject, facts in iter_subject_facts(reader, events_table, until, start=start,
                                                 stop=stop):
            for state in states({subject: facts}, policy, today):
                buffer.add(state)
            seen += len(facts)
            if len(buffer) < due:
                continue
            if _write(writer, buffer, wait=len(buffer) >= 4 * FILL_CHUNK):
                due = FILL_CHUNK
                if progress is not None:
                    progress(seen)
            else:  # tried again some subjects later, not after each (a try costs a transaction)
                due = len(buffer) + FILL_RETRY
        _write(writer, buffer, wait=True)
    if progress is not None:
        progress(seen)
    return seen


FILL_CHUNK = 2000  # subjects a fill writes at once
FILL_RETRY = FILL_CHUNK // 16  # subjects computed before a write that found the lock taken is retried


def _write(writer: Connection, buffer: RowBuffer, *, wait: bool) -> bool:
    """Write a fill's buffered rows; True once written. Without ``wait``, on SQLite, False at
    once when another worker holds the write lock: the worker computes its next subjects
    instead of sleeping in SQLite's busy handler, whose sleeps (1, 2, 5 … 25 ms) overshoot the
    end of the other's write (2 workers, a million events: 0.3-0.5 s a worker waited in its
    writes). Nothing is written then (the rollback), and the rows stay in the buffer."""
    patience = nullcontext() if wait else _sqlite_pragma(writer, "busy_timeout", 0)
    try:
        with writer.begin(), patience:
            buffer.write(writer, replace=False)
    except sqlite3.OperationalError as exc:
        if wait or "database is locked" not in str(exc):
            raise
        return False
    return True


@contextmanager
def _commits_not_waiting_for_the_disk(target: Engine) -> Iterator[Connection]:
    """A connection to fill a generation with, whose commits do not wait for the disk (SQLite
    ``synchronous = NORMAL``, PostgreSQL ``synchronous_commit = off``): an fsync a chunk cost
    3 us an event on SQLite, of 34. Nobody reads a generation being filled until the switch,
    whose own commit waits for the disk and, the log being written in order, makes every
    earlier commit durable with it; a generation a crash left half filled is dropped by the
    next rebuild. The connection goes back to its pool as it came."""
    with target.connect() as connection:
        restore: str | None = None
        if connection.dialect.name == "sqlite":
            was = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
            restore = f"PRAGMA synchronous = {int(was)}"
            connection.exec_driver_sql("PRAGMA synchronous = NORMAL")
        elif connection.dialect.name == "postgresql":
            was = connection.exec_driver_sql("SHOW synchronous_commit").scalar_one()
            restore = f"SET synchronous_commit = {was}"
            connection.exec_driver_sql("SET synchronous_commit = off")
        connection.commit()  # SQLAlchemy began a transaction around the settings
        failed = True
        try:
            yield connection
            failed = False
        finally:
            try:
                if restore is not None:
                    connection.exec_driver_sql(restore)
                connection.commit()
            except Exception:
                connection.invalidate()  # never back to the pool with commits that do not wait
                if not failed:  # else the fill's own error is the one to report
                    raise


def fill_range(ledger_url: str, target_url: str, generation: int, until: int, today: date,
               policy: list[Fact], start: str | None, stop: str | None) -> int:
    """A worker process's share of a rebuild: one range of subject keys."""
    source = _worker_engine(ledger_url)
    target = _worker_engine(target_url)
    with source.connect() as reader:
        if reader.dialect.name == "postgresql":
            # the workers already use the cores: a page read by a parallel plan took 2x
            # the server's CPU of a plain one (server CPU 30 -> 23 us an event, 2 workers)
            reader.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
        return fill_subjects(reader, target, tables_of("subjects", generation), until,
                             today, policy, start, stop)


_worker_engines: dict[str, Engine] = {}


def _worker_engine(url: str) -> Engine:
    """A worker process's engine for ``url``: made for its first range and kept for the next
    (a worker fills several; connecting to PostgreSQL took 15-20 ms), disposed as it exits."""
    engine = _worker_engines.get(url)
    if engine is None:
        engine = _worker_engines[url] = create_engine(url)
        atexit.register(engine.dispose)
    return engine


# -- the key registry projection -------------------------------------------------------------


def _keys_rows(runner: ProjectionRunner, reader: Connection, until: int,
               today: date) -> list[dict[str, Any]]:
    log, events = ledger_tables.log, runner.events
    replay = RegistryReplay()
    for nid, oid, version, topic, state in reader.execute(
            select(events.c.id, events.c.originator_id, events.c.originator_version,
                   events.c.topic, events.c.state)
            .join(log, log.c.notification_id == events.c.id)
            .where(log.c.stream == "Authority", log.c.position <= until)
            .order_by(log.c.position)):
        replay.feed(nid, oid, version, topic, bytes(state))
    end_of_day = datetime(today.year, today.month, today.day, 23, 59, tzinfo=UTC)
    rows = []
    for key in replay.registry.keys.values():
        authority = replay.registry.authorities[key.authority]
        rows.append({
            "kid": key.kid, "authority": key.authority, "authority_kind": authority.kind,
            "authority_name_zh": authority.name_zh, "fingerprint": fingerprint(key.public_key),
            "public_key": b64(key.public_key), "valid_from": _naive(key.valid_from),
            "expires_at": _naive(key.expires_at), "retired_at": _naive(key.retired_at),
            "revoked_at": _naive(key.revoked_at), "status": key.status_at(end_of_day),
        })
    return rows


def _keys_step(runner: ProjectionRunner, conn: Connection, reader: Connection,
               tables: Mapping[str, Any], position: int, as_of: date | None, today: date) -> Step:
    log = ledger_tables.log
    last = reader.execute(select(func.max(log.c.position))).scalar()
    end = -1 if last is None else int(last)
    changed = reader.execute(select(func.count()).select_from(log).where(
        log.c.stream == "Authority", log.c.position > position, log.c.position <= end)).scalar()
    if end <= position and as_of == today:
        return Step(position, 0)
    if changed or as_of != today:
        table = tables["proj_keys"]
        conn.execute(delete(table))
        rows = _keys_rows(runner, reader, end, today)
        if rows:
            conn.execute(insert(table), rows)
    return Step(end, max(end - position, 0))


def _keys_fill(runner: ProjectionRunner, tables: Mapping[str, Any], until: int, today: date,
               progress: Progress | None, workers: int | None) -> None:
    with runner.ledger.engine.connect() as reader:
        rows = _keys_rows(runner, reader, until, today)
    with runner.engine.begin() as conn:
        if rows:
            conn.execute(insert(tables["proj_keys"]), rows)


# -- the checkpoints projection --------------------------------------------------------------


def _checkpoints_step(runner: ProjectionRunner, conn: Connection, reader: Connection,
                      tables: Mapping[str, Any], position: int, as_of: date | None,
                      today: date) -> Step:
    source = ledger_tables.checkpoints
    rows = reader.execute(select(source.c.seq, source.c.tree_size, source.c.root_hash,
                                 source.c.issued_at, source.c.kid)
                          .where(source.c.seq > position).order_by(source.c.seq)
                          .limit(BATCH)).all()
    if not rows:
        return Step(position, 0)
    conn.execute(insert(tables["proj_checkpoints"]), [
        {"seq": seq, "tree_size": size, "root_hash": bytes(root).hex(), "issued_at": issued,
         "kid": kid} for seq, size, root, issued, kid in rows])
    return Step(int(rows[-1][0]), len(rows))


def _checkpoints_fill(runner: ProjectionRunner, tables: Mapping[str, Any], until: int,
                      today: date, progress: Progress | None, workers: int | None) -> None:
    position = -1
    with runner.ledger.engine.connect() as reader:
        while position < until:
            with runner.engine.begin() as conn:
                step = _checkpoints_step(runner, conn, reader, tables, position, today, today)
            if step.applied == 0:
                break
            position = step.position
            if progress is not None:
                progress(position)


PROJECTORS: dict[str, Callable[..., Step]] = {
    "subjects": _subjects_step, "keys": _keys_step, "checkpoints": _checkpoints_step}
FILLERS: dict[str, Callable[..., None]] = {
    "subjects": _subjects_fill, "keys": _keys_fill, "checkpoints": _checkpoints_fill}


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else naive_utc(moment)


def _now() -> datetime:
    return naive_utc(datetime.now(UTC))


def _row_key(row: dict[str, Any]) -> str:
    """A row as comparable text: each column's value as the database gives it back."""
    return "|".join(f"{k}={_plain(row[k])}" for k in sorted(row))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return naive_utc(value).isoformat() if value.tzinfo else value.isoformat()
    return "" if value is None else str(value)


def _row_differences(table: str, expected: list[tuple[str, str]],
                     found: list[tuple[str, str]]) -> list[str]:
    """Rows the log gives that the read model lacks or holds otherwise, by subject."""
    missing, extra = set(expected) - set(found), set(found) - set(expected)
    subjects = sorted({s for s, _ in missing} | {s for s, _ in extra})
    out = []
    for subject in subjects:
        want = sorted(r for s, r in missing if s == subject)
        have = sorted(r for s, r in extra if s == subject)
        detail = _first_field_difference(want[0], have[0]) if want and have else (
            "a row the log does not give" if have else "a row missing")
        out.append(f"{table} of {mask_subject_key(subject)} differs from the log: {detail}")
    return out


def _first_field_difference(want: str, have: str) -> str:
    expected = dict(part.split("=", 1) for part in want.split("|"))
    stored = dict(part.split("=", 1) for part in have.split("|"))
    for key in sorted(expected):
        if expected[key] != stored.get(key):
            return f"{key} is {stored.get(key)!r}, the log gives {expected[key]!r}"
    return "rows differ"

