"""Read models on SQLite and PostgreSQL: incremental equals rebuilt, row by row; a crash in a batch
leaves nothing half-applied; time moves flags; a separate database works; follow wakes up."""

from __future__ import annotations

import threading
import time
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from domain import clock
from ledger.application import CreditLedger
from projections import runner as runner_module
from projections.runner import ProjectionRunner
from projections.schema import TABLES, positions, tables_of
from tests.conftest import at, initialised, submission
from workflows import demo_city
from workflows.services import CreditServices

VIEWS = [view for name in TABLES for view in tables_of(name, 1)]
TODAY = date(2026, 11, 27)


def snapshot(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {view: sorted(tuple(row) for row in conn.execute(text(f"SELECT * FROM {view}")))
                for view in VIEWS}


def build_city(ledger: CreditLedger, every: int | None = None,
               runner: ProjectionRunner | None = None) -> None:
    """A small demo city; with ``every``, the read models catch up along the way."""
    calls = {"n": 0}

    def progress(done: int) -> None:
        calls["n"] += 1
        if runner is not None and every and calls["n"] % every == 0:
            runner.catch_up(today=TODAY)

    demo_city.build(ledger, 25, 7, progress)


def test_incrementally_built_read_models_equal_rebuilt_ones_row_by_row(
        ledger: CreditLedger) -> None:
    runner = ProjectionRunner(ledger)
    build_city(ledger, every=40, runner=runner)
    runner.catch_up(today=TODAY)
    incremental = snapshot(ledger.engine)
    assert len(incremental["proj_subjects"]) == 25
    assert incremental["proj_records"] and incremental["proj_objections"]
    assert incremental["proj_listings"] and incremental["proj_keys"]
    for name in TABLES:
        runner.rebuild(name, today=TODAY)
    assert snapshot(ledger.engine) == incremental
    with ledger.engine.connect() as conn:
        generations = {r.name: r.generation for r in conn.execute(select(positions))}
    assert generations == {"subjects": 2, "keys": 2, "checkpoints": 2}


def test_a_crash_in_the_middle_of_a_batch_leaves_no_half_applied_batch(
        ledger: CreditLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    with ledger.engine.connect() as conn:
        before_rows = conn.execute(text("SELECT count(*) FROM credit_events")).scalar()
    runner.setup()
    empty = snapshot(ledger.engine)
    original = runner_module.RowBuffer.write

    def write_then_crash(self: Any, connection: Any, *, replace: bool) -> None:
        original(self, connection, replace=replace)  # rows are in the transaction …
        raise RuntimeError("killed in the middle of the batch")  # … and then the process dies

    monkeypatch.setattr(runner_module.RowBuffer, "write", write_then_crash)
    with pytest.raises(RuntimeError, match="killed"):
        runner.catch_up(["subjects"], today=TODAY)
    monkeypatch.undo()
    assert snapshot(ledger.engine) == empty
    with ledger.engine.connect() as conn:
        position = conn.execute(select(positions.c.position)
                                .where(positions.c.name == "subjects")).scalar()
    assert position == -1
    runner.catch_up(today=TODAY)
    caught_up = snapshot(ledger.engine)
    runner.rebuild("subjects", today=TODAY)
    assert snapshot(ledger.engine) == caught_up
    assert before_rows


def test_a_write_is_readable_from_the_read_models_at_once(ledger: CreditLedger,
                                                        services: CreditServices) -> None:
    runner = ProjectionRunner(ledger)
    initialised(services)
    with clock.frozen_at(at("2026-06-01T02:00:00")):
        rid = services.submit_record(submission("tax", 7, decided=date(2026, 5, 20)))
    runner.catch_up(today=TODAY)
    with ledger.engine.connect() as conn:
        row = conn.execute(text("SELECT public, status FROM proj_records WHERE id = :i"),
                           {"i": str(rid)}).one()
        subject = conn.execute(text("SELECT grade, points, name FROM proj_subjects")).one()
    assert tuple(row) == (True, "in_force")
    assert tuple(subject) == ("B", 88, "测试主体")  # 2023 grading: ordinary -12


def test_flags_move_with_time_without_an_event(ledger: CreditLedger,
                                               services: CreditServices) -> None:
    runner = ProjectionRunner(ledger)
    initialised(services)
    with clock.frozen_at(at("2026-06-01T02:00:00")):
        rid = services.submit_record(submission("tax", 7, decided=date(2026, 5, 20)))
    runner.catch_up(today=date(2027, 5, 19))
    with ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT public FROM proj_records WHERE id = :i"),
                            {"i": str(rid)}).scalar()
        changes_on = conn.execute(text("SELECT changes_on FROM proj_subjects")).scalar()
        assert str(changes_on) == "2027-05-20"
    runner.catch_up(today=date(2027, 5, 20))  # its 12 months are over
    with ledger.engine.connect() as conn:
        assert not conn.execute(text("SELECT public FROM proj_records WHERE id = :i"),
                                {"i": str(rid)}).scalar()
        assert conn.execute(text("SELECT points FROM proj_subjects")).scalar() == 100
    moved = snapshot(ledger.engine)
    runner.rebuild("subjects", today=date(2027, 5, 20))
    assert snapshot(ledger.engine)["proj_records"] == moved["proj_records"]


@pytest.mark.initialised
def test_read_models_in_a_separate_database(ledger: CreditLedger, services: CreditServices,
                                            tmp_path: Path) -> None:
    with clock.frozen_at(at("2026-06-01T02:00:00")):
        services.submit_record(submission("tax", 7, decided=date(2026, 5, 20)))
    engine = create_engine(f"sqlite:///{tmp_path / 'read.db'}")
    try:
        ProjectionRunner(ledger, engine).catch_up(today=TODAY)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM proj_records")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM proj_keys")).scalar() == 5
    finally:
        engine.dispose()


@pytest.mark.initialised
def test_follow_applies_new_events_as_they_arrive(ledger: CreditLedger,
                                                  services: CreditServices) -> None:
    runner = ProjectionRunner(ledger)
    runner.catch_up(today=TODAY)
    stop = threading.Event()
    follower = CreditLedger(ledger.settings)
    thread = threading.Thread(target=ProjectionRunner(follower).follow,
                              kwargs={"interval": 0.2, "stop": stop.is_set}, daemon=True)
    thread.start()
    try:
        with clock.frozen_at(at("2026-06-01T02:00:00")):
            services.submit_record(submission("tax", 8, decided=date(2026, 5, 21)))
        deadline = time.monotonic() + 20
        found = 0
        while time.monotonic() < deadline and not found:
            time.sleep(0.2)
            with ledger.engine.connect() as conn:
                found = int(conn.execute(text("SELECT count(*) FROM proj_records")).scalar() or 0)
        assert found == 1
    finally:
        stop.set()
        thread.join(timeout=10)
        follower.close()


@pytest.mark.initialised
def test_status_reports_positions_and_lag(ledger: CreditLedger, services: CreditServices) -> None:
    runner = ProjectionRunner(ledger)
    assert {r["name"]: r["behind"] for r in runner.status()}["subjects"] == ledger.event_count()
    runner.catch_up(today=TODAY)
    assert all(r["behind"] == 0 for r in runner.status())


def test_a_rebuild_by_worker_processes_equals_one_by_a_single_process(
        ledger: CreditLedger) -> None:
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    runner.rebuild("subjects", today=TODAY)
    single = snapshot(ledger.engine)
    runner.rebuild("subjects", today=TODAY, workers=3)
    assert snapshot(ledger.engine) == single


def test_a_parallel_fill_s_ranges_hold_each_subject_s_events_once_in_the_database_s_order(
        ledger: CreditLedger) -> None:
    """The workers take ranges of subject keys in turn, large ones first: cut where the
    database orders the keys (its collation decides what ``subject < stop`` holds), the
    ranges follow each other without overlap and together hold every subject's events."""
    from ledger.tables import log
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    with ledger.engine.connect() as conn:
        until = int(conn.execute(select(func.max(log.c.position))).scalar_one())
        bounds = runner_module._subject_bounds(runner, until, 2)
        assert bounds[0] is None and bounds[-1] is None and len(bounds) > 3
        cuts = bounds[1:-1]
        for low, high in pairwise(cuts):
            assert conn.execute(select(text(":low < :high")),
                                {"low": low, "high": high}).scalar_one(), (low, high)
        held = 0
        for low, high in pairwise(bounds):
            held += conn.execute(select(func.count()).select_from(log).where(
                log.c.subject.is_not(None),
                *([log.c.subject >= low] if low is not None else []),
                *([log.c.subject < high] if high is not None else []))).scalar_one()
        assert held == conn.execute(select(func.count()).select_from(log).where(
            log.c.subject.is_not(None))).scalar_one()


def test_a_parallel_fill_hands_out_ever_smaller_shares_down_to_the_last() -> None:
    for workers in (2, 3, 8):
        shares = runner_module.range_shares(workers)
        assert shares[0] == pytest.approx(1 / (2 * workers))
        steps = [b - a for a, b in pairwise([0.0, *shares, 1.0])]
        assert all(a >= b - 1e-12 for a, b in pairwise(steps[:-1]))  # never growing
        assert min(steps) >= runner_module.FILL_LAST_RANGE / 2
        assert steps[-2] == pytest.approx(runner_module.FILL_LAST_RANGE)


@pytest.mark.initialised
def test_a_rebuild_by_worker_processes_of_a_store_without_subjects_is_empty(
        ledger: CreditLedger) -> None:
    """The workers start before the parent knows how many events there are (or whether any is
    about a subject): with none, the switch still happens; with one subject, two workers share
    its events without writing it twice."""
    runner = ProjectionRunner(ledger)
    runner.rebuild("subjects", today=TODAY, workers=2)
    assert _live_generation(ledger) == 2
    assert all(not snapshot(ledger.engine)[view] for view in tables_of("subjects", 1))
    services = CreditServices(ledger)
    with clock.frozen_at(at("2026-03-10T02:00:00")):
        services.submit_record(submission("tax", 1, decided=date(2026, 3, 1)))
    runner.rebuild("subjects", today=TODAY, workers=2)
    rows = snapshot(ledger.engine)
    assert len(rows["proj_subjects"]) == 1 and len(rows["proj_records"]) == 1


def test_rows_written_through_the_driver_equal_rows_written_by_sqlalchemy(
        ledger: CreditLedger) -> None:
    """The rebuild writes its rows through the driver's batch insert (projections/subjects.py
    ``insert_rows``), converting values itself: stored, they must be what ``insert(table)``
    stores, column by column, on each database."""
    from sqlalchemy import insert

    from projections.subjects import as_python_values, insert_rows, row_values_of
    build_city(ledger)
    services = CreditServices(ledger)
    with ledger.engine.connect() as conn:
        keys = [row[0] for row in conn.execute(text(
            "SELECT DISTINCT subject FROM ledger_log WHERE subject IS NOT NULL"))]
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for key in keys:
        for name, part in row_values_of(services.state(key, as_of=TODAY)).items():
            rows.setdefault(name, []).extend(part)
    assert all(rows[name] for name in ("proj_subjects", "proj_records", "proj_listings"))
    by_driver, by_sqlalchemy = tables_of("subjects", 901), tables_of("subjects", 902)
    stored = {}
    for tables, write in ((by_driver, insert_rows),
                          (by_sqlalchemy,
                           lambda c, t, r: c.execute(insert(t), as_python_values(t, r)))):
        with ledger.engine.begin() as conn:
            for name, table in tables.items():
                table.create(conn)
                if rows.get(name):
                    write(conn, table, rows[name])
        with ledger.engine.connect() as conn:
            stored[id(tables)] = {
                name: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {t.name}")))
                for name, t in tables.items()}
    assert stored[id(by_driver)] == stored[id(by_sqlalchemy)]
    with ledger.engine.connect() as conn:  # and as the driver reads them back: same types
        types = {type(v) for r in conn.execute(text(f"SELECT * FROM "
                                                     f"{by_driver['proj_records'].name}"))
                 for v in r}
    assert types <= {str, int, bool, date, type(None)}


AWKWARD_TEXTS = ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\.",
                 "\\N", "", "信用临安 ✓", "quote ' and \" marks", "trailing\\"]


def _listing_row(i: int, text_: str) -> tuple[Any, ...]:
    from projections.subjects import COLUMNS
    row = {"id": f"00000000-0000-0000-0000-{i:012d}", "subject": "uscc:91330185MA00000000",
           "number": text_, "list": "black", "authority": "tax", "legal_basis": text_,
           "status": "active", "start": "2026-01-02", "planned_end": "2027-01-02",
           "ends_on": "2027-01-02", "removed_on": None, "measures": text_}
    return tuple(row[name] for name in COLUMNS["proj_listings"])


def test_awkward_text_is_stored_by_the_driver_as_sqlalchemy_stores_it(
        ledger: CreditLedger) -> None:
    """The driver's batch write (COPY text on PostgreSQL) escapes what its format gives a
    meaning: tabs, line breaks, backslashes, a lone ``\\.`` or ``\\N``."""
    from sqlalchemy import insert

    from projections.subjects import as_python_values, insert_rows
    rows = [_listing_row(i, t) for i, t in enumerate(AWKWARD_TEXTS)]
    stored = []
    for generation, write in ((903, insert_rows),
                              (904, lambda c, t, r: c.execute(insert(t),
                                                              as_python_values(t, r)))):
        table = tables_of("subjects", generation)["proj_listings"]
        with ledger.engine.begin() as conn:
            table.create(conn)
            write(conn, table, rows)
        with ledger.engine.connect() as conn:
            stored.append(sorted(tuple(r) for r in conn.execute(text(
                f"SELECT * FROM {table.name}"))))
    assert stored[0] == stored[1]
    assert sorted(r[2] for r in stored[0]) == sorted(AWKWARD_TEXTS)


def test_a_value_the_database_refuses_is_sqlalchemy_s_error(ledger: CreditLedger) -> None:
    """What the runner records as a subject's fault (projections/runner.py POISON) is the
    error SQLAlchemy's insert would raise, not the driver's own."""
    from sqlalchemy.exc import DataError, IntegrityError

    from projections.subjects import insert_rows
    table = tables_of("subjects", 905)["proj_listings"]
    with ledger.engine.begin() as conn:
        table.create(conn)
    with pytest.raises(IntegrityError), ledger.engine.begin() as conn:
        insert_rows(conn, table, [_listing_row(1, "a"), _listing_row(1, "b")])
    if ledger.engine.dialect.name == "postgresql":  # SQLite limits neither length nor NUL
        with pytest.raises(DataError), ledger.engine.begin() as conn:
            insert_rows(conn, table, [_listing_row(2, "x" * 65)])
        with pytest.raises(ValueError), ledger.engine.begin() as conn:
            insert_rows(conn, table, [_listing_row(3, "nul\x00")])


def test_a_fill_s_commits_that_do_not_wait_for_the_disk_end_with_the_fill(
        ledger: CreditLedger) -> None:
    """A rebuild fills its generation through a connection whose commits do not wait for the
    disk; that connection goes back to the pool as it came, also when the fill fails, so no
    later write of the read models (or of the ledger, where they share a database) is made
    without waiting for the disk."""
    from projections.runner import _commits_not_waiting_for_the_disk
    engine = create_engine(ledger.engine.url, pool_size=1, max_overflow=0)
    sqlite = engine.dialect.name == "sqlite"
    query = "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit"

    def setting() -> Any:
        with engine.connect() as conn:
            return conn.exec_driver_sql(query).scalar()

    try:
        with engine.connect() as conn:  # commits that wait (this machine's server: not)
            conn.exec_driver_sql("PRAGMA synchronous = FULL" if sqlite
                                 else "SET synchronous_commit = on")
            conn.commit()
        before = setting()
        assert str(before) in ("2", "on")
        with _commits_not_waiting_for_the_disk(engine) as writer:
            assert str(writer.exec_driver_sql(query).scalar()) == ("1" if sqlite else "off")
            writer.rollback()
        assert setting() == before
        with pytest.raises(RuntimeError, match="the fill failed"), \
                _commits_not_waiting_for_the_disk(engine):
            raise RuntimeError("the fill failed")
        assert setting() == before
    finally:
        engine.dispose()


def test_a_fill_s_write_that_finds_the_lock_taken_keeps_its_rows_for_later(
        ledger: CreditLedger) -> None:
    """A worker's write that need not wait, finding another writer holding SQLite's lock,
    returns at once having written nothing, its rows kept for the next; a write that must wait
    waits. The connection keeps its own busy timeout. PostgreSQL takes both writes at once."""
    from projections.runner import _write
    from projections.subjects import RowBuffer
    build_city(ledger)
    services = CreditServices(ledger)
    with ledger.engine.connect() as conn:
        key = conn.execute(text("SELECT subject FROM ledger_log WHERE subject IS NOT NULL "
                                "LIMIT 1")).scalar_one()
    tables = tables_of("subjects", 906)
    with ledger.engine.begin() as conn:
        for table in tables.values():
            table.create(conn)
    buffer = RowBuffer(tables)
    buffer.add(services.state(key, as_of=TODAY))
    sqlite = ledger.engine.dialect.name == "sqlite"
    other = create_engine(ledger.engine.url)
    writer_engine = create_engine(ledger.engine.url)
    subjects = tables["proj_subjects"]

    def stored() -> int:
        with other.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(subjects)).scalar_one())

    try:
        with writer_engine.connect() as writer:
            holder = other.connect()
            holding = holder.begin()
            holder.execute(text(f"DELETE FROM {tables['proj_repairs'].name}"))  # takes the lock
            started = time.perf_counter()
            written = _write(writer, buffer, wait=False)
            assert written == (not sqlite)
            if sqlite:
                assert time.perf_counter() - started < 1
                assert len(buffer) == 1 and stored() == 0
                assert writer.exec_driver_sql("PRAGMA busy_timeout").scalar() \
                    == ledger_busy_ms(ledger)
                writer.rollback()
                threading.Timer(0.3, holding.commit).start()  # the other writer ends
                assert _write(writer, buffer, wait=True)
            else:
                holding.commit()
            holder.close()
            assert len(buffer) == 0 and stored() == 1
    finally:
        other.dispose()
        writer_engine.dispose()


def test_a_fill_whose_writes_find_the_lock_taken_writes_every_subject_once(
        ledger: CreditLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fill that finds SQLite's write lock taken goes on computing, tries again some subjects
    later and, with four chunks buffered, waits: the rebuilt rows are those of a fill that never
    met the lock."""
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    runner.rebuild("subjects", today=TODAY, workers=1)
    expected = snapshot(ledger.engine)
    monkeypatch.setattr(runner_module, "FILL_CHUNK", 2)
    monkeypatch.setattr(runner_module, "FILL_RETRY", 1)
    tried: list[bool] = []
    real_write = runner_module._write
    other = create_engine(ledger.engine.url)
    holder = other.connect()
    timers: list[threading.Timer] = []

    def write(writer: Any, buffer: Any, *, wait: bool) -> bool:
        if not tried:  # another writer takes the lock as the fill's first write comes
            holding = holder.begin()
            holder.execute(text("UPDATE proj_positions SET name = name WHERE 0 = 1"))
            timers.append(threading.Timer(1.0, holding.commit))
            timers[0].start()
        tried.append(real_write(writer, buffer, wait=wait))
        return tried[-1]

    monkeypatch.setattr(runner_module, "_write", write)
    try:
        runner.rebuild("subjects", today=TODAY, workers=1)
        timers[0].join()
    finally:
        holder.close()
        other.dispose()
    assert snapshot(ledger.engine) == expected
    if ledger.engine.dialect.name == "sqlite":
        assert False in tried and tried[-1]
    else:
        assert all(tried)


def ledger_busy_ms(ledger: CreditLedger) -> int:
    """The busy timeout the ledger's URL gives a SQLite connection, in milliseconds."""
    return int(float(ledger.engine.url.query["timeout"]) * 1000)


def _live_generation(ledger: CreditLedger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(positions.c.generation)
                                .where(positions.c.name == "subjects")).scalar_one())


def test_a_rebuilt_generation_has_every_index_of_the_schema_and_unique_keys(
        ledger: CreditLedger) -> None:
    """A rebuild fills its generation's tables before it indexes them (``_index``); switched,
    the generation has every index the schema names, its keys unique as declared."""
    from sqlalchemy import insert, inspect
    from sqlalchemy.exc import IntegrityError
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    runner.rebuild("subjects", today=TODAY, workers=2)
    tables = tables_of("subjects", _live_generation(ledger))
    inspector = inspect(ledger.engine)
    for table in tables.values():
        declared = {str(index.name): bool(index.unique) for index in table.indexes}
        assert any(declared.values())  # each table's key
        found = {str(index["name"]): bool(index["unique"])
                 for index in inspector.get_indexes(table.name)}
        assert found == declared, table.name
    records = tables["proj_records"]
    with ledger.engine.connect() as conn:
        row = conn.execute(select(records)).mappings().first()
    assert row is not None
    with pytest.raises(IntegrityError), ledger.engine.begin() as conn:
        conn.execute(insert(records).values(**{**row, "subject": "another"}))


def test_a_duplicate_key_in_a_fill_fails_the_rebuild_and_the_live_generation_serves_on(
        ledger: CreditLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fill inserts into tables without their unique indexes: a duplicate it wrote (a bug in
    the rows) is refused when they are built, before anything is switched; the next rebuild
    drops the half-built generation and builds it afresh."""
    from sqlalchemy.exc import IntegrityError

    from projections import subjects as subjects_projection
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    runner.catch_up(today=TODAY)
    live, generation = snapshot(ledger.engine), _live_generation(ledger)
    real = subjects_projection.row_values_of

    def doubled(state: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
        rows = real(state)
        return {**rows, "proj_records": rows["proj_records"] * 2}

    monkeypatch.setattr(subjects_projection, "row_values_of", doubled)
    with pytest.raises(IntegrityError):
        runner.rebuild("subjects", today=TODAY, workers=1)
    assert _live_generation(ledger) == generation
    assert snapshot(ledger.engine) == live
    monkeypatch.setattr(subjects_projection, "row_values_of", real)
    runner.rebuild("subjects", today=TODAY, workers=1)
    assert _live_generation(ledger) == generation + 1
    assert snapshot(ledger.engine) == live


@pytest.mark.parametrize("setting, inside, before", [
    ("secure_delete", 0, 1),  # a drop: the pages it frees are not zeroed
    ("cache_size", -2000, -65536),  # an index built: its keys sorted in little memory
])
def test_a_rebuild_s_sqlite_settings_come_back_with_the_connection(
        ledger: CreditLedger, backend: str, setting: str, inside: int, before: int) -> None:
    """SQLite built with SECURE_DELETE zeroes every page a DROP frees, and sorts an index's
    keys in as much memory as the page cache holds: a rebuild drops a generation and builds
    its indexes with other settings, on the connection that does it only, which goes back to
    its pool as it came, also when the work fails."""
    context = {"secure_delete": runner_module._freed_pages_not_overwritten,
               "cache_size": runner_module._sorting_in_little_memory}[setting]
    engine = create_engine(ledger.engine.url, pool_size=1, max_overflow=0)
    try:
        if backend == "postgresql":  # nothing to set
            with engine.begin() as conn, context(conn):
                conn.exec_driver_sql("SELECT 1")
            return

        def value() -> int:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(f"PRAGMA {setting}").scalar_one())

        with engine.connect() as conn:
            conn.exec_driver_sql(f"PRAGMA {setting} = {before}")
        with engine.begin() as conn, context(conn):
            assert conn.exec_driver_sql(f"PRAGMA {setting}").scalar_one() == inside
        assert value() == before
        with pytest.raises(RuntimeError, match="the work failed"), engine.begin() as conn, \
                context(conn):
            raise RuntimeError("the work failed")
        assert value() == before
    finally:
        engine.dispose()


def test_a_store_whose_subject_index_predates_the_notification_id_gets_it_from_a_rebuild(
        ledger: CreditLedger) -> None:
    """The subject index carries each event's notification id (``ledger.tables.SUBJECT_INDEX``),
    so the fill reads the index and the events, not ledger_log's rows; a store made before
    gets it from its next rebuild, which reads through it, and its rows are unchanged."""
    from sqlalchemy import event, inspect

    from ledger.tables import SUBJECT_INDEX, upgrade_subject_index
    runner = ProjectionRunner(ledger)
    build_city(ledger)
    runner.catch_up(today=TODAY)
    live = snapshot(ledger.engine)
    with ledger.engine.begin() as conn:  # the index as earlier versions made it
        conn.exec_driver_sql(f"DROP INDEX {SUBJECT_INDEX.name}")
        conn.exec_driver_sql(f"CREATE INDEX {SUBJECT_INDEX.name} ON ledger_log (subject, position)")
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", capture)
    try:
        runner.rebuild("subjects", today=TODAY, workers=1)
    finally:
        event.remove(ledger.engine, "before_cursor_execute", capture)
    (index,) = [i for i in inspect(ledger.engine).get_indexes("ledger_log")
                if i["name"] == SUBJECT_INDEX.name]
    assert index["column_names"] == ["subject", "position", "notification_id"]
    assert upgrade_subject_index(ledger.engine) is False  # once
    assert snapshot(ledger.engine) == live
    if ledger.engine.dialect.name == "sqlite":
        (fill,) = [s for s in statements if "credit_events" in s and "ORDER BY" in s
                   and "ledger_log.subject <" not in s and " IN " not in s]
        with ledger.engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.execute(
                text("EXPLAIN QUERY PLAN " + fill.replace("?", "'x'"))))
        assert f"COVERING INDEX {SUBJECT_INDEX.name}" in plan, plan


def test_the_fill_reads_each_state_as_stored_and_one_not_utf8_fails_as_on_sqlite(
        backend: str, ledger: CreditLedger) -> None:
    """On PostgreSQL the fill reads states as UTF-8 text (cheaper than bytea's hex): its facts
    are those read as bytes, Chinese text included. A state that is not UTF-8 (written with the
    database's keys but not ours) fails the read where it does on SQLite, in its decoding."""
    from ledger.fact_queries import _state_as_text, iter_subject_facts, read_facts_of
    from ledger.tables import log
    build_city(ledger)
    events = ledger.recorder.events_table
    with ledger.engine.connect() as conn:
        assert _state_as_text(conn) == (backend == "postgresql")
        until = int(conn.execute(select(func.max(log.c.position))).scalar_one())
        streamed = dict(iter_subject_facts(conn, events, until, page=7))
        assert len(streamed) == 25
        assert streamed == read_facts_of(conn, events, list(streamed), until)
        assert any("临安" in str(fact.data) for facts in streamed.values() for fact in facts)
        victim = next(iter(streamed.values()))[-1].notification_id
    with ledger.engine.begin() as conn:
        state = conn.execute(text(f"SELECT state FROM {events.name} WHERE id = :i"),
                             {"i": victim}).scalar_one()
        conn.execute(text(f"UPDATE {events.name} SET state = :s WHERE id = :i"),
                     {"s": bytes(state)[:-1] + b"\xff}", "i": victim})
    with ledger.engine.connect() as conn, pytest.raises(UnicodeDecodeError):
        list(iter_subject_facts(conn, events, until, page=7))
