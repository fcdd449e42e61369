"""Faults around a command: a committed write is never reported as failed, configuration is
checked rather than guessed, a busy SQLite ledger says the write did not happen. (Issue 12, the
first part; the kill -9 and poison-row suites are still to come.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from projections.runner import ProjectionRunner
from tests.e2e.test_cli import Credit

SUBMIT = ("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
          "--subject-name", "测试公司", "--item", "TAX-PENALTY", "--decision-number", "1",
          "--on", "2026-01-05", "--summary", "逾期申报")


def test_a_write_whose_read_model_catch_up_fails_is_reported_as_written(
        credit: Credit, monkeypatch: pytest.MonkeyPatch) -> None:
    credit("init")
    original = ProjectionRunner.catch_up
    failures = {"left": 1}

    def flaky(self: ProjectionRunner, *args: object, **kwargs: object) -> dict[str, int]:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the connection to the read models was lost")
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ProjectionRunner, "catch_up", flaky)
    before = credit.events()
    written = credit(*SUBMIT)
    assert written.returncode == 0 and written.stdout.startswith("recorded ")
    assert written.stderr.startswith("warning: the write is safe in the ledger")
    assert credit.events() > before
    again = credit(*SUBMIT, ok=False)  # a retry is rightly refused: it was written
    assert "already in the ledger" in again.stderr
    # the next command catches the read models up by itself
    found = json.loads(credit("lookup", "测试公司", "--json").stdout)["subjects"]
    assert [s["subject"] for s in found] == ["uscc:91350100M000100Y43"]


def test_an_empty_database_url_is_refused_not_taken_for_the_default(credit: Credit) -> None:
    credit.config["CREDIT_DATABASE_URL"] = ""
    refused = credit("lookup", "x", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: CREDIT_DATABASE_URL is set but empty")


@pytest.mark.parametrize("command", [("lookup", "杭州"), ("history", "91350100M000100Y43"),
                                     ("project", "--status"), ("checkpoints",),
                                     ("keys", "list"), ("verify",)])
def test_a_read_against_a_database_without_a_ledger_says_so_and_creates_nothing(
        credit: Credit, command: tuple[str, ...]) -> None:
    refused = credit(*command, ok=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: there is no ledger at ")
    engine = create_engine(credit.url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_writer_that_waits_too_long_for_a_busy_sqlite_ledger_says_nothing_was_written(
        tmp_path: Path) -> None:
    # SQLite only: PostgreSQL writers queue on the table lock and do not give up
    path = tmp_path / "credit.db"
    busy_ledger = Credit(f"sqlite:///{path}?timeout=1", tmp_path / "keys")
    busy_ledger("init")
    before = busy_ledger.events()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        busy = busy_ledger(*SUBMIT, ok=False)
    finally:
        holder.rollback()
        holder.close()
    assert busy.returncode == 1
    assert busy.stderr.strip() == ("error: the ledger is busy: another writer held it longer "
                                   "than this command waits; nothing was written: run the "
                                   "command again")
    assert busy_ledger.events() == before
    busy_ledger(*SUBMIT)


def test_database_refusals_are_one_sentence_saying_what_happened() -> None:
    # (a read-only file cannot be made read-only for the root user the tests run as: the
    # driver's own errors are given to the sentence-maker directly)
    import sqlite3 as driver

    from sqlalchemy.exc import OperationalError

    from cli.common import one_sentence

    def refusal(message: str) -> OperationalError:
        return OperationalError("INSERT INTO credit_events …", {}, driver.OperationalError(message))

    assert one_sentence(refusal("attempt to write a readonly database")).startswith(
        "the database cannot be written (it is read-only)")
    assert one_sentence(refusal("database or disk is full")).endswith(
        "nothing of this command was written")
    assert "\n" not in one_sentence(refusal("disk I/O error\n[SQL: INSERT …]"))
