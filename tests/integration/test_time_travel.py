"""A hand-computed timeline, asserted at about ten dates, as of a day and as known at a time, on
SQLite and PostgreSQL; and the subject index is what history reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event, text

from domain import clock
from tests.conftest import ENTERPRISE, at, initialised, submission
from workflows.services import CreditServices

OFFICE = "credit-office"


class Timeline:
    """Enterprise E, 2019-2023 (grading 2016 until 2022, then 2023):
    - 2019-03-01 tax penalty P (ordinary; 2016 catalogue: public 12 months), recorded 03-04
    - 2019-06-10 objection about P raised, accepted 06-11 (ruling due 06-18: 5 working days),
      ruled 06-14: P's summary corrected
    - 2019-09-01 major tax violation V (serious; 2019 catalogue: public 36 months, repair after 6)
    - 2019-10-15 black listing on V (notified 10-05, planned end 2022-10-15)
    - 2020-03-01 P's public display ends (its 12 months) — no event
    - 2020-05-10 repair of P applied, refused 05-12: the subject is on the black list
    - 2021-01-20 the listing removed
    - 2021-02-01 repair of V applied, approved 02-05
    """

    def __init__(self, services: CreditServices) -> None:
        self.s = services
        initialised(services, "2016-01-02T00:00:00")
        day = self.day
        with day("2019-03-04"):
            self.p = services.submit_record(submission("tax", 1, decided=date(2019, 3, 1)))
        with day("2019-06-10"):
            self.objection = services.raise_objection(
                OFFICE, subject=ENTERPRISE, target_kind="record", target_id=self.p,
                grounds="罚款金额有误")
        with day("2019-06-11"):
            self.deadline = services.accept_objection(OFFICE, self.objection)
        with day("2019-06-14"):
            services.rule_objection(OFFICE, self.objection, outcome="correct",
                                    reasoning="金额更正", changes={"summary": "处罚决定(更正)"})
        with day("2019-09-03"):
            self.v = services.submit_record(replace(submission("tax", 2, decided=date(2019, 9, 1)),
                                                    item_code="TAX-MAJOR-VIOLATION"))
        with day("2019-10-15"):
            self.listing = services.add_listing(
                OFFICE, list_name="black", subject=ENTERPRISE, legal_basis="条例第二十四条",
                basis_records=[self.v], start=date(2019, 10, 15), notified_on=date(2019, 10, 5),
                planned_end=date(2022, 10, 15), removal_conditions="补缴税款并满一年")
        with day("2020-05-10"):
            refused = services.apply_repair(OFFICE, self.p, evidence=["已缴纳"], commitment="守信")
        with day("2020-05-12"):
            services.decide_repair(OFFICE, refused, approve=False)
        with day("2021-01-20"):
            services.remove_listing(OFFICE, self.listing, reason="已补缴税款")
        with day("2021-02-01"):
            self.repair = services.apply_repair(OFFICE, self.v, evidence=["已补缴"],
                                                commitment="守信经营")
        with day("2021-02-05"):
            services.decide_repair(OFFICE, self.repair, approve=True)

    @staticmethod
    def day(text_: str) -> Any:
        return clock.frozen_at(at(f"{text_}T02:00:00"))

    def state(self, as_of: str, known_at: str | None = None) -> dict[str, Any]:
        known = at(f"{known_at}T12:00:00") if known_at else at("2026-11-27T00:00:00")
        return self.s.state(ENTERPRISE.key, date.fromisoformat(as_of), known)

    def record(self, state: dict[str, Any], record_id: UUID) -> dict[str, Any] | None:
        return next((r for r in state["records"] if r["id"] == str(record_id)), None)


@pytest.fixture
def timeline(services: CreditServices) -> Timeline:
    return Timeline(services)


def grade(state: dict[str, Any]) -> tuple[str, int, str]:
    g = state["grade"]
    return g["grade"], g["points"], g["policy"]


def test_the_timeline_as_of_each_date(timeline: Timeline) -> None:
    t = timeline
    assert t.deadline == date(2019, 6, 18)

    before = t.state("2019-02-28")
    assert before["records"] == [] and grade(before) == ("A", 100, "2016.1")

    decided = t.state("2019-03-01")
    assert grade(decided) == ("A", 90, "2016.1")  # ordinary -10
    p = t.record(decided, t.p)
    assert p is not None and p["public"] and p["summary"] == "处罚决定(更正)"  # retroactive

    marked = t.record(t.state("2019-06-12"), t.p)
    assert marked is not None and marked["under_objection"]
    assert marked["objections"] == [t.objection]

    ruled = t.record(t.state("2019-06-14"), t.p)
    assert ruled is not None and not ruled["under_objection"] and ruled["corrected"]

    serious = t.state("2019-09-01")
    assert grade(serious) == ("C", 60, "2016.1")  # 100 - 10 - 30

    listed = t.state("2019-10-15")
    assert grade(listed)[0] == "D" and listed["grade"]["override"] == "on the black list: grade D"
    assert listed["listings"][0]["status"] == "active"
    assert {m["code"] for m in listed["listings"][0]["measures"]} >= {"NO-PROCUREMENT"}

    ended = t.state("2020-03-01")
    p = t.record(ended, t.p)
    assert p is not None and not p["public"] and p["disclosure_ended_by"] == "period"
    assert ended["grade"]["points"] == 70 and grade(ended)[0] == "D"

    refused = t.state("2020-05-12")
    assert refused["repairs"][0]["status"] == "refused"
    assert any(not c["passed"] and c["rule"] == "not_black_listed"
               for c in refused["repairs"][0]["checks"])

    removed = t.state("2021-01-20")
    assert removed["listings"][0]["status"] == "removed"
    assert grade(removed) == ("B", 70, "2016.1")

    repaired = t.state("2021-02-05")
    v = t.record(repaired, t.v)
    assert v is not None and v["repaired"] and not v["public"] and not v["shared"]
    assert grade(repaired) == ("A", 100, "2016.1")

    assert grade(t.state("2023-01-01")) == ("A", 100, "2023.1")


def test_the_timeline_as_the_ledger_knew_it_then(timeline: Timeline) -> None:
    t = timeline
    # decided on 1 March, recorded on 4 March: on the 2nd the ledger knew nothing
    assert t.state("2019-03-02", known_at="2019-03-02")["records"] == []
    # during the objection, before the ruling: marked, and the summary as first submitted
    then = t.record(t.state("2019-06-12", known_at="2019-06-12"), t.p)
    assert then is not None and then["under_objection"] and then["summary"] == "处罚决定 1"
    # the same day as known later: the correction reaches back
    later = t.record(t.state("2019-06-12", known_at="2019-06-20"), t.p)
    assert later is not None and later["summary"] == "处罚决定(更正)"
    assert later["under_objection"]  # the objection was open on that day either way
    # the black listing as known before its removal was recorded
    assert t.state("2021-02-01", known_at="2021-01-19")["listings"][0]["status"] == "active"


def test_diff_lists_changes_and_the_signed_events_that_made_them(timeline: Timeline) -> None:
    t = timeline
    result = t.s.diff(ENTERPRISE.key, date(2019, 9, 2), date(2021, 2, 5))
    kinds = [e["event"] for e in result["events"]]
    assert kinds == ["Listing.Listed", "RepairApplication.Applied", "RepairApplication.Decided",
                     "Listing.Removed", "RepairApplication.Applied", "RepairApplication.Decided",
                     "CreditRecord.Repaired"]
    assert all(e["notification_id"] and e["kid"] for e in result["events"])
    by_kind = {e["event"]: e["notification_id"] for e in result["events"]}
    (grade,) = [c for c in result["changes"] if c["what"] == "grade" and c["field"] == "grade"]
    assert (grade["from"], grade["to"]) == ("C", "A")
    # each change names the signed events that made it
    (repaired,) = [c for c in result["changes"] if c["field"] == "repaired"]
    assert by_kind["CreditRecord.Repaired"] in repaired["events"]
    assert by_kind["RepairApplication.Decided"] in repaired["events"]
    assert by_kind["Listing.Listed"] not in repaired["events"]
    assert set(repaired["events"]) <= set(grade["events"]) <= set(by_kind.values()) | {
        e["notification_id"] for e in result["events"]}
    assert [c["change"] for c in result["by_time"]] == ["public display ended (maximum period)"]


def test_history_reads_the_subject_through_its_index(timeline: Timeline) -> None:
    engine = timeline.s.ledger.engine
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        timeline.state("2020-01-01")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    reads = [s for s in statements if "credit_events" in s]
    assert reads and all("ledger_log.subject =" in s for s in reads)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.execute(
                text("EXPLAIN QUERY PLAN " + reads[0].replace("?", "'x'"))))
        assert "ledger_log_subject_idx" in plan, plan
