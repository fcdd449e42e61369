"""The database failing under an import, as real faults: the disk fills (a file-size limit on the
importing process, SQLite) and the connection is lost (the test terminates the import's own
PostgreSQL backend). Either way the file is in the ledger whole or not at all, the command says
so in one sentence (no traceback), the ledger verifies, and the import can simply be run again.

A full disk on PostgreSQL is the server's: the server refuses the statement and rolls the
transaction back, which the command sees as it sees any refused statement (the lost connection
here is the harder case: the command cannot even be told)."""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import discard_pg_database, fresh_pg_database, pg_url, require_postgres
from tests.e2e.test_cli import ROOT, Credit
from tests.faults.test_kills import ROWS, SEED, import_file

APPLICATION = "credit-fault-test"


def run_import(credit: Credit, path: Path, limit: int | None = None,
               ) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}

    def limited() -> None:  # in the child: files may not grow past ``limit`` bytes
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.Popen([sys.executable, "-m", "cli", "import", str(path), "--as", "tax"],
                            cwd=ROOT, env={**env, **credit.config}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limited)


def test_a_full_disk_mid_import_writes_nothing_and_says_so(tmp_path: Path) -> None:
    database = tmp_path / "credit.db"
    credit = Credit(f"sqlite:///{database}", tmp_path / "keys")
    credit("init")
    before = credit.events()
    path = import_file(tmp_path)
    # room for a few rows more, not for the file's 1,500 (SQLite's file and its journal)
    process = run_import(credit, path, limit=database.stat().st_size + 64 * 1024)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)
    assert "Traceback" not in err
    assert err.startswith("error: the database could not write to its disk (full, or failing)")
    assert err.rstrip().endswith("nothing of this command was written"), err
    assert len(err.strip().splitlines()) == 1, err
    assert credit.events() == before
    assert credit("verify").returncode == 0
    credit("import", str(path), "--as", "tax")  # with room again, the same file goes in whole
    assert credit.events() == before + ROWS + 1


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_postgres()
    name = fresh_pg_database()
    try:
        # the import's connections carry a name, so the test can find (and end) them
        yield make_url(pg_url(name)).update_query_dict(
            {"application_name": APPLICATION}).render_as_string(hide_password=False)
    finally:
        discard_pg_database(name)


@pytest.mark.postgresql
@pytest.mark.parametrize("attempt", [1, 2])
def test_a_lost_connection_mid_import_is_all_or_nothing(postgres_url: str, tmp_path: Path,
                                                        attempt: int) -> None:
    credit = Credit(postgres_url, tmp_path / "keys")
    credit("init")
    before = credit.events()
    path = import_file(tmp_path)
    process = run_import(credit, path)
    # autocommit: pg_stat_activity is read afresh by each statement, not once per transaction
    watcher = create_engine(postgres_url.replace(APPLICATION, "credit-fault-watcher"),
                            isolation_level="AUTOCOMMIT")
    delay = random.Random(SEED * 10 + attempt).uniform(0.0, 1.0)
    try:
        with watcher.connect() as conn:
            deadline = time.monotonic() + 60
            while not conn.execute(text(  # the import's transaction has begun
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = :name "
                    "AND xact_start IS NOT NULL"), {"name": APPLICATION}).first():
                assert process.poll() is None and time.monotonic() < deadline, \
                    "the import ended before its transaction was seen"
                time.sleep(0.01)
            time.sleep(delay)
            ended = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name"), {"name": APPLICATION}).all()
    finally:
        watcher.dispose()
    _, err = process.communicate(timeout=120)
    after = credit.events()
    story = f"connection ended {delay:.2f}s into the transaction (seed {SEED}, {len(ended)} " \
            f"backends): exit {process.returncode}, {after - before} events\n{err}"
    assert "Traceback" not in err, story
    if process.returncode == 0:  # it committed first: a catch-up cut short is only a warning
        assert after == before + ROWS + 1, story
    else:  # (a commit whose reply was lost is in; the sentence does not say otherwise)
        assert after in (before, before + ROWS + 1), story
        assert len(err.strip().splitlines()) == 1, story
        assert err.startswith("error: the connection to the database was lost"), story
    assert credit("verify").returncode == 0
    again = credit("import", str(path), "--as", "tax", ok=False)  # safe to run again
    assert credit.events() == before + ROWS + 1, again.stderr
    credit("project")
    assert "all equal" in credit("verify", "--projections").stdout


@pytest.mark.postgresql
def test_a_copy_whose_backend_ends_raises_and_prints_nothing(
        postgres_url: str, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The write path's COPY (ledger/bulk.py) when its backend ends mid-COPY, made certain: a
    row the table's check turns into the backend ending itself. psycopg2 prints the second error
    it meets (a traceback on stderr) while it raises the first; the COPY must raise, and print
    nothing, so the command's one sentence is all a user sees; the debug log names the error's
    kind, never the row psycopg2 quotes."""
    import logging

    import psycopg2

    from ledger.bulk import copy_rows
    person = "330102199001011234"
    engine = create_engine(postgres_url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("CREATE TEMPORARY TABLE doomed (n integer CHECK (n <> 13 OR "
                       "pg_terminate_backend(pg_backend_pid())), who text)")
        capfd.readouterr()
        with caplog.at_level(logging.DEBUG, logger="ledger.bulk"), \
                pytest.raises(psycopg2.OperationalError):
            copy_rows(cursor, "doomed", ("n", "who"), [(n, person) for n in range(1, 5000)])
        assert capfd.readouterr().err == ""
        assert "psycopg2 also reported" in caplog.text
        assert person not in caplog.text
    finally:
        raw.invalidate()  # its backend is gone: not back into the pool
        engine.dispose()
    # an error printed outside a COPY still reaches stderr as before
    try:
        raise RuntimeError("not held")
    except RuntimeError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    assert "RuntimeError: not held" in capfd.readouterr().err
