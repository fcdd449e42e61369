"""Batch import on SQLite and PostgreSQL: every example file, bad files refused whole, large
files in batches inside one transaction."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from domain import clock
from domain.authorities import LINAN_AUTHORITIES
from domain.identifiers import SubjectRef, uscc_check_char
from ledger import tables
from ledger.application import CreditLedger
from ledger.verify import LedgerVerifier
from tests.conftest import at, initialised
from workflows.importer import BATCH, Importer, ImportRefused
from workflows.services import CreditServices

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def counts(ledger: CreditLedger) -> tuple[int, int]:
    with ledger.engine.connect() as conn:
        return (int(conn.execute(select(func.count()).select_from(tables.log)).scalar() or 0),
                int(conn.execute(select(func.count()).select_from(tables.checkpoints)).scalar()
                    or 0))


@pytest.fixture
def platform(services: CreditServices) -> CreditServices:
    initialised(services, "2026-11-01T00:00:00")
    with clock.frozen_at(at("2026-11-01T00:00:00")):
        for profile in LINAN_AUTHORITIES[5:]:
            services.ledger.register_authority(profile)
    return services


def test_every_example_file_imports_as_its_department(platform: CreditServices) -> None:
    files = sorted(EXAMPLES.glob("*.*"))
    assert {f.suffix for f in files} == {".jsonl", ".csv"}
    # one example for every authority that submits records, and for no one else
    assert sorted(f.stem for f in files) == sorted(
        a.code for a in LINAN_AUTHORITIES if a.kind != "platform")
    for path in files:
        with clock.frozen_at(at("2026-11-20T02:00:00")):
            summary = Importer(platform, path.stem).run(path)
        assert (summary.submitted, summary.corrected) == (6, 1), path
    report = LedgerVerifier(platform.ledger.engine, platform.ledger.recorder.events_table).run()
    assert report.ok, report.failures


def write_rows(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
                            + "\n" for r in rows), encoding="utf-8")
    return path


def row(n: int, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"subject": "uscc:91350100M000100Y43", "subject_name": "测试公司",
                              "item_code": "TAX-PENALTY", "decision_number": f"临税罚〔2026〕{n}号",
                              "decision_date": "2026-05-01", "summary": "逾期申报"}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def test_a_file_with_bad_rows_is_refused_whole_naming_every_bad_row(
        platform: CreditServices, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "tax.jsonl", [
        row(1),
        row(2, subject="uscc:91350100M000100Y4Z"),
        "{not json",
        row(4, item_code="MKT-PENALTY"),
        row(5, decision_date="2026-02-30"),
        row(1),  # the same record as line 1
        row(7, summary=" "),
        row(8, colour="red"),
        {"action": "correct", "record_id": "not-an-id", "reason": "x", "changes": {}},
        row(10, subject="uscc:91110000600037341L", subject_name=None),
    ])
    before = counts(platform.ledger)
    with pytest.raises(ImportRefused) as refused:
        Importer(platform, "tax").run(path)
    lines = {e.line: e.reason for e in refused.value.errors}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "is not in the code alphabet" in lines[2]
    assert lines[3].startswith("not JSON")
    assert lines[4] == "item MKT-PENALTY is submitted by 'market', not by 'tax'"
    assert "is not a date" in lines[5]
    assert lines[6] == "the same record as line 1"
    assert lines[7] == "summary is missing or empty"
    assert lines[8] == "unknown field(s) for submit: colour"
    assert "is not an id" in lines[9]
    assert "is not registered: give subject_name" in lines[10]
    assert f"{path}:2: subject" in str(refused.value)
    assert counts(platform.ledger) == before


def test_a_csv_file_names_its_bad_lines_too(platform: CreditServices, tmp_path: Path) -> None:
    path = tmp_path / "market.csv"
    path.write_text(
        "subject,subject_name,item_code,decision_number,decision_date,summary,details.amount\n"
        "uscc:91350100M000100Y43,测试公司,MKT-PENALTY,临市监罚〔2026〕1号,2026-05-01,处罚,100.00\n"
        "uscc:91350100M000100Y43,测试公司,MKT-PENALTY,临市监罚〔2026〕2号,2099-05-01,处罚,100.00\n",
        encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        Importer(platform, "market").run(path)
    ((line, reason),) = [(e.line, e.reason) for e in refused.value.errors]
    assert line == 3
    assert reason.startswith("the decision date 2099-05-01 is after today, ")


def big_file(path: Path, rows: int) -> Path:
    rng = random.Random(7)
    lines = []
    for n in range(rows):
        body = "91330112" + "".join(rng.choice("0123456789") for _ in range(9))
        subject = SubjectRef("uscc", body + uscc_check_char(body))
        lines.append(row(n, subject=subject.key, subject_name=f"企业{n}",
                         decision_date=(date(2026, 4, 1) + timedelta(days=n % 200)).isoformat()))
    return write_rows(path, lines)


def test_a_large_file_is_written_in_batches_inside_one_transaction(
        platform: CreditServices, tmp_path: Path) -> None:
    rows = 2 * BATCH + 500
    path = big_file(tmp_path / "tax.jsonl", rows)
    events, checkpoints = counts(platform.ledger)
    with clock.frozen_at(at("2026-11-20T02:00:00")):
        summary = Importer(platform, "tax").run(path)
    assert summary.submitted == rows and summary.subjects_registered == rows
    after_events, after_checkpoints = counts(platform.ledger)
    assert after_events - events == 2 * rows
    assert after_checkpoints - checkpoints == 3  # one per batch, committed together
    report = LedgerVerifier(platform.ledger.engine, platform.ledger.recorder.events_table).run()
    assert report.ok, report.failures


def test_a_failure_while_writing_leaves_nothing_of_the_file(
        platform: CreditServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = big_file(tmp_path / "tax.jsonl", BATCH + 10)
    before = counts(platform.ledger)
    calls = {"n": 0}
    original = CreditServices._store_records

    def failing(self: CreditServices, batch: Any, presigned: Any, registering: Any = None
                ) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch's write
            raise RuntimeError("the disk is full")
        return original(self, batch, presigned, registering)

    monkeypatch.setattr(CreditServices, "_store_records", failing)
    with pytest.raises(RuntimeError, match="the disk is full"):
        Importer(platform, "tax").run(path)
    monkeypatch.undo()
    assert counts(platform.ledger) == before
    # the ledger is still whole, and the same file imports afterwards
    with clock.frozen_at(at("2026-11-20T02:00:00")):
        Importer(platform, "tax").run(path)
    report = LedgerVerifier(platform.ledger.engine, platform.ledger.recorder.events_table).run()
    assert report.ok, report.failures


def test_importing_as_a_department_that_does_not_own_the_items_is_refused(
        platform: CreditServices) -> None:
    with pytest.raises(ImportRefused) as refused:
        Importer(platform, "market").run(EXAMPLES / "tax.jsonl")
    assert all("submitted by 'tax', not by 'market'" in e.reason
               for e in refused.value.errors if e.line < 7)


def test_corrections_and_revocations_dated_when_they_cannot_be_are_named_by_line(
        platform: CreditServices, tmp_path: Path) -> None:
    first = row(1)  # decided 2026-05-01
    target = {"subject": first["subject"], "item_code": first["item_code"],
              "decision_number": first["decision_number"]}
    path = write_rows(tmp_path / "tax.jsonl", [
        first,
        {"action": "correct", **target, "reason": "笔误", "changes": {"summary": "更正"},
         "on": "2099-01-01"},
        {"action": "revoke", **target, "reason": "有误", "on": "2025-12-31"},
        {"action": "revoke", **target, "reason": "有误", "on": "20260105"},
        {"action": "correct", **target, "reason": "笔误", "changes": {"summary": "更正"},
         "on": "2026-05-06"},
    ])
    before = counts(platform.ledger)
    with clock.frozen_at(at("2026-11-20T02:00:00")), pytest.raises(ImportRefused) as refused:
        Importer(platform, "tax").run(path)
    lines = {e.line: e.reason for e in refused.value.errors}
    assert sorted(lines) == [2, 3, 4]
    assert lines[2] == "on 2099-01-01 is after today, 2026-11-20 (China time)"
    assert lines[3] == "on 2025-12-31 is before the record's decision date 2026-05-01"
    assert "is not a date" in lines[4]
    assert counts(platform.ledger) == before
