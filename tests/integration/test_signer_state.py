"""The platform never signs a rewritten history: its signer's own record of the last checkpoint
it signed (beside its key) refuses a rolled-back, truncated or rewritten store, and `credit
verify` names a rollback; time only moves forward. SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from domain import clock
from ledger.application import CreditLedger
from ledger.recorder import LedgerRecorder, StoreRolledBack, TimeGoesBack
from ledger.settings import Settings
from tests.conftest import (
    PG_ADMIN_URL,
    at,
    create_pg_database,
    drop_pg_database,
    pg_url,
    submission,
)
from workflows.administration import StoreVerification, trusted_platform_keys
from workflows.services import CreditServices


def write(settings: Settings, n: int, day: str = "2021-09-01") -> None:
    """One more record, typed in on ``day`` (decided the month before)."""
    app = CreditLedger(settings)
    decided = date.fromisoformat(day).replace(day=1)
    try:
        with clock.frozen_at(at(f"{day}T02:00:00")):
            CreditServices(app).submit_record(submission("tax", n, decided=decided))
    finally:
        app.close()


@contextmanager
def snapshot(settings: Settings, folder: Path) -> Iterator[Settings]:
    """A copy of the database as it is now (the same key folder): an old backup."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        copy = folder / "backup.db"
        shutil.copy(url.database, copy)
        yield Settings(database_url=f"sqlite:///{copy}", keys_dir=settings.keys_dir,
                       passphrase=settings.passphrase)
        return
    # no one may be connected to a template: end the test's own sessions first
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": url.database})
    admin.dispose()
    name = create_pg_database(template=url.database)
    try:
        yield Settings(database_url=pg_url(name), keys_dir=settings.keys_dir,
                       passphrase=settings.passphrase)
    finally:
        drop_pg_database(name)


def verify_store(settings: Settings) -> Any:
    verification = StoreVerification(settings, trusted_platform_keys(settings, None))
    return verification.run()


def test_a_store_rolled_back_to_an_older_copy_is_refused_and_named(scenario: Settings,
                                                                   tmp_path: Path) -> None:
    with snapshot(scenario, tmp_path) as old:
        write(scenario, 501)  # the live store moves on; the signer records what it signed
        write(scenario, 503)
        assert verify_store(scenario).ok
        with pytest.raises(StoreRolledBack, match="truncated or rolled back"):
            write(old, 502)  # the old copy put back: nothing is signed over it
        report = verify_store(old)
        assert not report.ok
        assert [f.check for f in report.failures] == ["rollback"]
        assert "rolled back" in report.failures[0].reason


def test_a_store_rewritten_at_the_same_size_is_refused(scenario: Settings,
                                                       tmp_path: Path) -> None:
    keys_elsewhere = tmp_path / "other-keys"
    shutil.copytree(scenario.keys_dir, keys_elsewhere)
    # a second history from the same start, signed by the same key folder's copy …
    with snapshot(scenario, tmp_path) as fork:
        forked = Settings(database_url=fork.database_url, keys_dir=keys_elsewhere,
                          passphrase=scenario.passphrase)
        write(forked, 601)
        write(scenario, 602)
        # … cannot be put in place of the first: same size, another root
        swapped = Settings(database_url=fork.database_url, keys_dir=scenario.keys_dir,
                           passphrase=scenario.passphrase)
        with pytest.raises(StoreRolledBack, match="the store was rewritten"):
            write(swapped, 603)
        report = verify_store(swapped)
        assert [f.check for f in report.failures] == ["rollback"]


@pytest.mark.parametrize("dropped", [1, 2, 3])
def test_events_deleted_from_the_end_are_refused_at_the_next_signature(
        scenario: Settings, dropped: int) -> None:
    # whatever the cut leaves of the tree's nodes (an even cut leaves a whole level-1 node
    # behind, which once surfaced as a duplicate record), the write is refused as a rollback
    engine = create_engine(scenario.database_url)
    with engine.begin() as conn:
        size = int(conn.execute(text("SELECT max(position) FROM ledger_log")).scalar()) + 1
        cut = size - dropped
        nids = [r[0] for r in conn.execute(text(
            "SELECT notification_id FROM ledger_log WHERE position >= :p"), {"p": cut})]
        conn.execute(text("DELETE FROM ledger_log WHERE position >= :p"), {"p": cut})
        for nid in nids:
            conn.execute(text("DELETE FROM credit_events WHERE id = :i"), {"i": nid})
        conn.execute(text("DELETE FROM ledger_checkpoints WHERE tree_size > :s"), {"s": cut})
    engine.dispose()
    with pytest.raises(StoreRolledBack, match=f"the store holds {cut} events, but this platform "
                                              f"signed a checkpoint of {size} events"):
        write(scenario, 701)
    engine = create_engine(scenario.database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_log")).scalar() == cut
    engine.dispose()


def test_an_event_dated_before_those_already_logged_is_refused(scenario: Settings) -> None:
    write(scenario, 801, "2021-09-01")
    with pytest.raises(TimeGoesBack, match="only moves forward"):
        write(scenario, 802, "2021-06-01")


def test_verify_names_an_event_dated_back_by_whoever_bypassed_the_write_path(
        scenario: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write(scenario, 951, "2021-09-01")
    # someone with the key and the database, writing with software that skips the check
    monkeypatch.setattr(LedgerRecorder, "_check_times", lambda *args: None)
    write(scenario, 952, "2021-06-01")
    report = verify_store(scenario)
    assert "time" in [f.check for f in report.failures]
    assert any("2021-06-01" in f.reason for f in report.failures if f.check == "time")
