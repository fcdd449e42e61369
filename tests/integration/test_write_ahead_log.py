"""SQLite's write-ahead log is copied into the database beside the writers (ledger/storage.py),
not by each commit; PostgreSQL keeps its own."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import pytest

from ledger import tables
from ledger.application import EVENTS_TABLE, CreditLedger
from ledger.storage import SQLITE_CACHE_KIB, SQLITE_WAL_PAGES, WalCheckpointer
from ledger.verify import LedgerVerifier
from tests.conftest import initialised, submission
from workflows.services import CreditServices


def _events_in_database_file(path: str, folder: Path) -> int:
    """Events the database file holds by itself, without its WAL: a copy of the file alone."""
    alone = folder / "alone.db"
    alone.write_bytes(Path(path).read_bytes())
    with sqlite3.connect(alone) as probe:
        return int(probe.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0])


def test_the_ledger_s_writers_leave_checkpoints_to_the_background(
        ledger: CreditLedger, services: CreditServices, backend: str, tmp_path: Path) -> None:
    initialised(services)
    checkpointer = ledger._checkpointer
    if backend == "postgresql":
        assert checkpointer is None  # PostgreSQL checkpoints by itself
        return
    assert checkpointer is not None
    with ledger.engine.connect() as conn:  # every pooled connection of the writer is tuned
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA cache_size").fetchone()[0] == -SQLITE_CACHE_KIB
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SQLITE_WAL_PAGES
    before = checkpointer.checkpoints
    checkpointer.every = 30  # (500 by default: about as often as SQLite's own threshold)
    services.submit_records([submission("tax", n) for n in range(1, 40)])
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpointer.checkpoints > before, "no background checkpoint after a write"
    # the writes reached the database file itself (the writer alone would not have copied
    # them: its own checkpoint waits for SQLITE_WAL_PAGES)
    assert _events_in_database_file(ledger.engine.url.database, tmp_path) == ledger.event_count()
    # what was copied is what was written: the store verifies from another connection
    report = LedgerVerifier(ledger.engine, tables.events_table(EVENTS_TABLE)).run()
    assert report.ok and report.events == ledger.event_count()
    ledger.close()  # and closing the ledger stops the thread
    assert not checkpointer._thread.is_alive()


def test_a_checkpoint_that_fails_is_logged_and_the_writes_stay_in_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a database the thread cannot open: the failure is a warning, never an exception in a
    # writer, and close() still returns
    folder = tmp_path / "gone"
    checkpointer = WalCheckpointer(str(folder / "credit.db"), interval=0.0, every=1)
    with caplog.at_level(logging.WARNING, logger="ledger.storage"):
        checkpointer.nudge(1)
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
        checkpointer.close()
    assert checkpointer.checkpoints == 0
    assert "background WAL checkpoint" in caplog.text and "failed" in caplog.text
    assert not os.path.exists(folder)


def test_a_few_events_are_copied_once_the_writers_are_idle(tmp_path: Path) -> None:
    """Below ``every`` events the thread waits for ``idle`` seconds without writes, then copies
    them: a quiet window does not leave its last writes only in the WAL."""
    path = tmp_path / "small.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
        checkpointer = WalCheckpointer(str(path), interval=0.0, every=1000, idle=2.0)
        try:
            checkpointer.nudge(1)
            time.sleep(0.1)
            assert checkpointer.checkpoints == 0  # not at once: one event of a thousand
            deadline = time.monotonic() + 10
            while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert checkpointer.checkpoints == 1
        finally:
            checkpointer.close()
    alone = tmp_path / "alone.db"
    alone.write_bytes(path.read_bytes())
    with sqlite3.connect(alone) as probe:
        assert probe.execute("SELECT count(*) FROM t").fetchone()[0] == 1
