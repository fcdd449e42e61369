"""Who sees what of a subject's file, and the query log of every read beyond the public file.
SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from domain import clock
from domain.disclosure import NotPublic
from domain.permissions import NotPermitted
from domain.queries import PurposeRequired
from ledger.application import CreditLedger
from ledger.verify import LedgerVerifier
from projections.queries import search_subjects
from projections.runner import ProjectionRunner
from tests.conftest import ENTERPRISE, PERSON, at, initialised, submission
from workflows.reads import Reads
from workflows.services import CreditServices

TODAY = date(2020, 9, 1)


@pytest.fixture
def reads(ledger: CreditLedger, services: CreditServices) -> Reads:
    """E: a public tax penalty, under an accepted objection; P: a market record about a person
    (shared, never public)."""
    initialised(services)
    with clock.frozen_at(at("2020-03-10T02:00:00")):
        services.submit_records([submission("tax", 1, decided=date(2020, 3, 1)),
                                 submission("market", 2, PERSON, decided=date(2020, 3, 2))])
        (public,) = [r for r in services.state(ENTERPRISE.key)["records"]]
        number = services.raise_objection("credit-office", subject=ENTERPRISE,
                                          target_kind="record", target_id=public["id"],
                                          grounds="有误")
        services.accept_objection("credit-office", number)
    return Reads(services)


def now() -> Any:
    return clock.frozen_at(at("2020-09-01T02:00:00"))


def logged(reads: Reads) -> list[dict[str, Any]]:
    return reads.queries(reads.reader("auditor:审计局"))


def test_the_public_sees_the_public_file_only_and_nothing_is_logged(reads: Reads) -> None:
    with now():
        state = reads.state(reads.reader(None), ENTERPRISE.key)
    assert state["view"] == "public"
    assert state["records"] and all(r["public"] for r in state["records"])
    assert state["objections"] == [] and state["repairs"] == []
    assert logged(reads) == []


def test_a_natural_persons_file_is_never_public(reads: Reads) -> None:
    with now(), pytest.raises(NotPublic) as refused:
        reads.state(reads.reader("public"), PERSON.key)
    assert PERSON.code not in str(refused.value)


def test_an_authorised_reader_sees_the_whole_file_stating_why_and_is_logged(
        reads: Reads) -> None:
    ledger = reads.ledger
    before = ledger.event_count()
    with now(), pytest.raises(PurposeRequired):
        reads.state(reads.reader("market"), PERSON.key)
    assert ledger.event_count() == before  # refused: nothing read, nothing logged
    with now():
        state = reads.state(reads.reader("market"), PERSON.key, purpose="行政许可审查")
    assert state["view"] == "full" and len(state["records"]) == 1
    (entry,) = logged(reads)
    assert (entry["reader"], entry["role"], entry["subject"], entry["purpose"]) == (
        "market", "department", PERSON.key, "行政许可审查")
    assert "1 records" in entry["returned"] and entry["signed_by"] == "market-2020-1"


def test_a_subject_reads_its_own_whole_file_and_no_one_elses(reads: Reads) -> None:
    with now():
        own = reads.state(reads.reader(f"subject:{ENTERPRISE.key}"), ENTERPRISE.key)
    assert own["view"] == "full" and own["objections"]
    with now(), pytest.raises(NotPermitted):
        reads.state(reads.reader(f"subject:{ENTERPRISE.key}"), PERSON.key, purpose="看看")
    (entry,) = logged(reads)
    assert entry["signed_by"].startswith("platform-")


def test_only_auditors_and_the_office_replay_what_the_ledger_knew_earlier(reads: Reads) -> None:
    known = at("2020-03-09T00:00:00")
    for reader in ("public", "market", "court:临安法院"):
        with now(), pytest.raises(NotPermitted):
            reads.state(reads.reader(reader), ENTERPRISE.key, known_at=known, purpose="x")
    with now():
        then = reads.state(reads.reader("auditor:审计局"), ENTERPRISE.key, known_at=known,
                           purpose="年度审计")
    assert then["records"] == []


def test_the_query_log_is_in_the_ledger_and_verify_catches_an_edited_entry(
        reads: Reads) -> None:
    with now():
        reads.state(reads.reader("court:临安法院"), PERSON.key, purpose="执行案件")
    (entry,) = logged(reads)
    ledger = reads.ledger
    assert LedgerVerifier(ledger.engine, ledger.recorder.events_table).run().ok
    with ledger.engine.begin() as conn:
        state = conn.execute(text("SELECT state FROM credit_events WHERE id = :i"),
                             {"i": entry["notification_id"]}).scalar()
        conn.execute(text("UPDATE credit_events SET state = :s WHERE id = :i"),
                     {"s": bytes(state).replace("执行案件".encode(), "无".encode()),
                      "i": entry["notification_id"]})
    report = LedgerVerifier(ledger.engine, ledger.recorder.events_table).run()
    assert report.first_failure is not None
    assert (report.first_failure.check, report.first_failure.notification_id) == (
        "signature", entry["notification_id"])


def test_the_query_log_is_filtered_by_subject_and_time_and_closed_to_the_public(
        reads: Reads) -> None:
    with clock.frozen_at(at("2020-05-01T02:00:00")):
        reads.state(reads.reader("market"), PERSON.key, purpose="一")
    with now():
        reads.state(reads.reader("tax"), ENTERPRISE.key, purpose="二")
    auditor = reads.reader("auditor")
    assert [q["purpose"] for q in reads.queries(auditor, PERSON.key)] == ["一"]
    assert [q["purpose"] for q in reads.queries(auditor, since=at("2020-06-01T00:00:00"))] == [
        "二"]
    with pytest.raises(NotPermitted):
        reads.queries(reads.reader("public"))


def test_lookup_finds_no_person_for_the_public_and_takes_wildcards_literally(
        reads: Reads, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-09-01T02:00:00")):
        services.submit_record(replace(submission("tax", 3, decided=date(2020, 8, 1)),
                                       subject=ENTERPRISE))
    runner = ProjectionRunner(reads.ledger)
    runner.catch_up(today=TODAY)

    def search(text_: str, people: bool) -> list[dict[str, Any]]:
        return search_subjects(runner.engine, text_, people)

    public = reads.reader("public")
    with now():
        assert [s["subject"] for s in reads.lookup(public, "测试", None, search)] == [
            ENTERPRISE.key]
        assert [s["subject"] for s in reads.lookup(public, ENTERPRISE.code, None, search)] == [
            ENTERPRISE.key]
        (row,) = reads.lookup(public, "测试", None, search)
        assert "records" not in row and "open_objections" not in row
        assert row["public_records"] >= 1
        for probe in ("%", "_", "测%", PERSON.code[:10], PERSON.code[:17], "张三",
                      ENTERPRISE.code[:8]):
            assert reads.lookup(public, probe, None, search) == [], probe
        with pytest.raises(NotPermitted):
            reads.lookup(public, PERSON.code, None, search)
        with pytest.raises(PurposeRequired):
            reads.lookup(reads.reader("market"), PERSON.code, None, search)
        found = reads.lookup(reads.reader("market"), PERSON.code, "许可审查", search)
    assert [s["subject"] for s in found] == [f"rid:{PERSON.masked()}"]
    assert [q["subject"] for q in logged(reads)] == [PERSON.key]
