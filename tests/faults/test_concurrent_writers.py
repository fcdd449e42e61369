"""Writers at the same time: a subject registered by another writer meanwhile is not reported as
a duplicate record; three writers at once all land, the ledger verifies. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from domain import clock
from ledger.application import CreditLedger
from ledger.errors import SubjectRegisteredMeanwhile
from tests.conftest import ENTERPRISE, at, submission
from tests.e2e.test_cli import ROOT, Credit
from workflows.importer import Importer
from workflows.services import CreditServices, RecordSubmission


def register_elsewhere(settings: Any) -> None:
    other = CreditLedger(settings)
    try:
        with clock.frozen_at(at("2020-03-10T02:00:00")):
            CreditServices(other).register_subject("market", ENTERPRISE, "测试主体")
    finally:
        other.close()


def stale_registration(services: CreditServices, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer (its own process's ledger) registers the subject and commits after this
    one looked and found it new."""
    looked = services.unregistered

    calls = [0]

    def racing(batch: Any, ahead: Any = None) -> list[RecordSubmission]:
        found = looked(batch, ahead)
        calls[0] += 1
        if found and calls[0] == 1:  # the look the save is about to rely on
            # in a thread of its own: a separate writer, not a part of this one's transaction
            thread = threading.Thread(target=register_elsewhere,
                                      args=(services.ledger.settings,))
            thread.start()
            thread.join(timeout=60)
        return found

    monkeypatch.setattr(services, "unregistered", racing)


@pytest.mark.initialised
def test_a_submission_racing_a_registration_lands_without_a_false_duplicate(
        ledger: CreditLedger, services: CreditServices, monkeypatch: pytest.MonkeyPatch) -> None:
    stale_registration(services, monkeypatch)
    with clock.frozen_at(at("2020-03-10T02:00:00")):
        (rid,) = services.submit_records([submission("tax", 1, decided=date(2020, 3, 1))])
    assert services.record(rid).subject == ENTERPRISE.key


@pytest.mark.initialised
def test_an_import_racing_a_registration_is_told_so_and_writes_nothing(
        ledger: CreditLedger, services: CreditServices, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    path = tmp_path / "tax.jsonl"
    path.write_text(json.dumps({
        "subject": ENTERPRISE.key, "subject_name": "测试主体", "item_code": "TAX-PENALTY",
        "decision_number": "临税罚〔2020〕1号", "decision_date": "2020-03-01",
        "summary": "逾期申报"}, ensure_ascii=False) + "\n", encoding="utf-8")
    stale_registration(services, monkeypatch)  # the look the batch's save relies on
    before = ledger.event_count()
    # PostgreSQL: the clash on the subject is named; SQLite: the other writer's commit ends this
    # one's snapshot, and it is told the ledger was busy. Never "already in the ledger".
    with clock.frozen_at(at("2020-03-10T02:00:00")), \
            pytest.raises((SubjectRegisteredMeanwhile, OperationalError)) as refused:
        Importer(services, "tax").run(path)
    assert "already in the ledger" not in str(refused.value)
    assert ledger.event_count() == before + 1  # the other writer.s registration only
    monkeypatch.undo()
    with clock.frozen_at(at("2020-03-10T02:00:00")):
        summary = Importer(services, "tax").run(path)
    assert (summary.submitted, summary.subjects_registered, summary.events) == (1, 0, 1)


def test_three_writers_at_once_all_land_and_the_ledger_verifies(database_url: str,
                                                                tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    files = []
    for writer, department, item in ((0, "tax", "TAX-PENALTY"), (1, "market", "MKT-PENALTY"),
                                     (2, "court", "COURT-DEBTOR")):
        path = tmp_path / f"{department}.jsonl"
        path.write_text("".join(json.dumps({
            "subject": ENTERPRISE.key, "subject_name": "测试主体", "item_code": item,
            "decision_number": f"第{writer}-{n}号", "decision_date": "2026-05-01",
            "summary": "同时写入"}, ensure_ascii=False) + "\n" for n in range(200)),
            encoding="utf-8")
        files.append((path, department))
    before = credit.events()
    processes = [subprocess.Popen([sys.executable, "-m", "cli", "import", str(path), "--as",
                                   department], cwd=ROOT, env={**env, **credit.config},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for path, department in files]
    results = [p.communicate(timeout=300) for p in processes]
    codes = [p.returncode for p in processes]
    # each writer waits its turn; one registers the subject, a writer that raced it is told so
    for code, (_, err) in zip(codes, results, strict=True):
        assert code == 0 or "was registered by another writer" in err, err
    for (path, department), code in zip(files, codes, strict=True):
        if code:
            credit("import", str(path), "--as", department)  # the retry lands
    assert credit.events() == before + 3 * 200 + 1
    assert credit("verify").returncode == 0
