"""Each credit workflow end to end through the services, on SQLite and PostgreSQL, ending with a
clean `verify`."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from domain import clock
from domain.listings import ListingRuleBroken, listing_id
from domain.permissions import NotPermitted
from domain.repairs import RepairNotAllowed
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import SubjectNotRegistered
from ledger.verify import LedgerVerifier
from tests.conftest import ENTERPRISE, PERSON, at, initialised, submission
from workflows.services import CreditServices

OFFICE = "credit-office"


def events(ledger: CreditLedger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.log)).scalar() or 0)


def clean(ledger: CreditLedger) -> None:
    report = LedgerVerifier(ledger.engine, ledger.recorder.events_table).run()
    assert report.ok, report.failures


def record_in(state: dict[str, Any], record_id: UUID) -> dict[str, Any]:
    return next(r for r in state["records"] if r["id"] == str(record_id))


@pytest.fixture
def city(ledger: CreditLedger, services: CreditServices) -> tuple[CreditServices, UUID]:
    """Authorities and policies from 2020-01-01; one ordinary tax penalty decided 2020-03-01."""
    initialised(services)
    with clock.frozen_at(at("2020-03-03T02:00:00")):
        rid = services.submit_record(submission("tax", 1, decided=date(2020, 3, 1)))
    return services, rid


def objection_on(services: CreditServices, rid: UUID, day: str = "2020-04-01") -> str:
    with clock.frozen_at(at(f"{day}T02:00:00")):
        number = services.raise_objection(OFFICE, subject=ENTERPRISE, target_kind="record",
                                          target_id=rid, grounds="罚款已撤销,记录有误")
        services.accept_objection(OFFICE, number)
    return number


@pytest.mark.parametrize("outcome, changes, check", [
    ("revoke", None, lambda r: r["status"] == "revoked"),
    ("correct", {"summary": "核实后的摘要"}, lambda r: r["summary"] == "核实后的摘要" and r["corrected"]),
    ("complete", {"details": {"amount": "100.00", "paid": "yes"}},
     lambda r: r["details"]["paid"] == "yes"),
    ("end_disclosure", None, lambda r: r["disclosure_ended_by"] == "ruling" and not r["public"]),
    ("reject", None, lambda r: r["status"] == "in_force" and not r["corrected"]),
])
def test_an_objection_is_marked_from_acceptance_and_its_ruling_is_carried_out(
        city: tuple[CreditServices, UUID], outcome: str, changes: dict[str, Any] | None,
        check: Any) -> None:
    services, rid = city
    number = objection_on(services, rid)
    marked = record_in(services.state(ENTERPRISE.key, date(2020, 4, 2)), rid)
    assert marked["under_objection"] and marked["objections"] == [number]
    with clock.frozen_at(at("2020-04-03T02:00:00")):
        services.rule_objection(OFFICE, number, outcome=outcome, reasoning="经核实",
                                changes=changes)
    after = record_in(services.state(ENTERPRISE.key, date(2020, 4, 3)), rid)
    assert not after["under_objection"]
    assert check(after)
    objection = services.state(ENTERPRISE.key, date(2020, 4, 3))["objections"][0]
    assert (objection["status"], objection["outcome"], objection["late"]) == ("ruled", outcome,
                                                                            False)
    clean(services.ledger)


@pytest.mark.initialised
def test_an_objection_about_a_listing_removes_the_subject_from_the_list(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-03T02:00:00")):
        rid = services.submit_record(replace(submission("tax", 9, decided=date(2020, 3, 1)),
                                             item_code="TAX-MAJOR-VIOLATION"))
    with clock.frozen_at(at("2020-04-20T02:00:00")):
        number = services.add_listing(OFFICE, list_name="black", subject=ENTERPRISE,
                                      legal_basis="条例第二十四条", basis_records=[rid],
                                      start=date(2020, 4, 20), notified_on=date(2020, 4, 10),
                                      removal_conditions="履行义务")
    with clock.frozen_at(at("2020-05-06T02:00:00")):
        objection = services.raise_objection(OFFICE, subject=ENTERPRISE, target_kind="listing",
                                             target_id=listing_id(number), grounds="列入错误")
        services.accept_objection(OFFICE, objection)
    assert services.state(ENTERPRISE.key, date(2020, 5, 7))["listings"][0]["under_objection"]
    with clock.frozen_at(at("2020-05-08T02:00:00")):
        services.rule_objection(OFFICE, objection, outcome="remove_from_list", reasoning="列入错误")
    listing = services.state(ENTERPRISE.key, date(2020, 5, 8))["listings"][0]
    assert (listing["status"], listing["removed_on"]) == ("removed", "2020-05-08")
    clean(ledger)


def test_an_extension_and_an_overdue_objection(city: tuple[CreditServices, UUID]) -> None:
    services, rid = city
    number = objection_on(services, rid, "2020-04-01")
    # Accepted Wednesday 1 April 2020; Qingming (6 April) is not a working day.
    assert services.overdue_objections(date(2020, 4, 9)) == []
    overdue = services.overdue_objections(date(2020, 4, 10))
    assert [o["number"] for o in overdue] == [number]
    assert overdue[0]["deadline"] == "2020-04-09"
    with clock.frozen_at(at("2020-04-03T02:00:00")):
        # 20 working days, counting Sunday 26 April, worked before May Day
        assert services.extend_objection(OFFICE, number, "需向税务局核实") == date(2020, 4, 29)
    assert services.overdue_objections(date(2020, 4, 10)) == []


def test_a_review_revising_a_rejection_revokes_the_record(city: tuple[CreditServices, UUID]
                                                          ) -> None:
    services, rid = city
    number = objection_on(services, rid)
    with clock.frozen_at(at("2020-04-03T02:00:00")):
        services.rule_objection(OFFICE, number, outcome="reject", reasoning="无误")
    with clock.frozen_at(at("2020-04-10T02:00:00")):
        services.request_review(OFFICE, number, "不服")
    with clock.frozen_at(at("2020-04-15T02:00:00")):
        services.rule_review(OFFICE, number, result="revised", reasoning="复核有误",
                             outcome="revoke")
    state = services.state(ENTERPRISE.key, date(2020, 4, 15))
    assert record_in(state, rid)["status"] == "revoked"
    assert state["objections"][0]["review"] == "revised"
    clean(services.ledger)


def test_repair_is_refused_before_the_minimum_period_and_approved_after(
        city: tuple[CreditServices, UUID]) -> None:
    services, rid = city
    with clock.frozen_at(at("2020-05-01T02:00:00")):  # 2 months after the decision
        early = services.apply_repair(OFFICE, rid, evidence=["罚款已缴纳"], commitment="守信")
        with pytest.raises(RepairNotAllowed, match="runs until 2020-06-01"):
            services.decide_repair(OFFICE, early, approve=True)
        checks = services.decide_repair(OFFICE, early, approve=False)
    assert [c.rule for c in checks if not c.passed] == ["minimum_period"]
    with clock.frozen_at(at("2020-06-02T02:00:00")):
        later = services.apply_repair(OFFICE, rid, evidence=["罚款已缴纳"], commitment="守信")
        services.decide_repair(OFFICE, later, approve=True)
    state = services.state(ENTERPRISE.key, date(2020, 6, 2))
    record = record_in(state, rid)
    assert record["repaired"] and not record["public"] and not record["shared"]
    assert [r["status"] for r in state["repairs"]] == ["refused", "approved"]
    # the record is still in the ledger, with every event it ever had
    assert [e.originator_version for e in services.ledger.recorder.select_events(rid)] == [1, 2]
    clean(services.ledger)


@pytest.mark.initialised
def test_a_subject_on_the_black_list_cannot_repair(ledger: CreditLedger,
                                                   services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-03T02:00:00")):
        serious = services.submit_record(replace(submission("tax", 9, decided=date(2020, 3, 1)),
                                                 item_code="TAX-MAJOR-VIOLATION"))
        ordinary = services.submit_record(submission("tax", 10, decided=date(2020, 3, 1)))
    with clock.frozen_at(at("2020-04-20T02:00:00")):
        services.add_listing(OFFICE, list_name="black", subject=ENTERPRISE, legal_basis="条例",
                             basis_records=[serious], start=date(2020, 4, 20),
                             notified_on=date(2020, 4, 10), removal_conditions="履行义务")
    with clock.frozen_at(at("2020-07-01T02:00:00")):
        number = services.apply_repair(OFFICE, ordinary, evidence=["已缴纳"], commitment="守信")
        with pytest.raises(RepairNotAllowed, match="serious-dishonesty list"):
            services.decide_repair(OFFICE, number, approve=True)


@pytest.mark.initialised
def test_listing_rules_through_the_ledger(ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-03T02:00:00")):
        ordinary = services.submit_record(submission("tax", 1, decided=date(2020, 3, 1)))
        honour = services.submit_record(replace(submission("tax", 2, decided=date(2020, 3, 1)),
                                                item_code="TAX-GRADE-A"))
    before = events(ledger)
    with clock.frozen_at(at("2020-04-20T02:00:00")):
        with pytest.raises(ListingRuleBroken, match="not serious negative information"):
            services.add_listing(OFFICE, list_name="black", subject=ENTERPRISE,
                                 legal_basis="条例", basis_records=[ordinary],
                                 start=date(2020, 4, 20), notified_on=date(2020, 4, 10),
                                 removal_conditions="履行")
        assert events(ledger) == before
        number = services.add_listing(OFFICE, list_name="red", subject=ENTERPRISE,
                                      legal_basis="守信激励", basis_records=[honour],
                                      start=date(2020, 4, 20))
    listing = services.listing(number)
    assert listing.planned_end == date(2022, 4, 20)  # the red list's 24 months
    assert services.state(ENTERPRISE.key, date(2022, 4, 20))["listings"][0]["status"] == "expired"
    clean(ledger)


@pytest.mark.initialised
def test_commitments_count_in_the_grade_and_a_grading_change_is_dated(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2022-06-02T02:00:00")):
        services.submit_record(submission("tax", 1, decided=date(2022, 6, 1)))
        number = services.make_commitment(OFFICE, subject=ENTERPRISE, text="按期整改",
                                          context="告知承诺审批")
    with clock.frozen_at(at("2022-09-01T02:00:00")):
        services.settle_commitment("tax", number, kept=True, note="已整改")
    # 2016 grading until 2022-12-31: 100 - 10 + 2; 2023 grading: 100 - 12 + 3
    assert services.state(ENTERPRISE.key, date(2022, 12, 31))["grade"]["points"] == 92
    assert services.state(ENTERPRISE.key, date(2023, 1, 2))["grade"]["points"] == 91
    clean(ledger)


@pytest.mark.initialised
def test_a_subjects_change_of_name_is_dated(ledger: CreditLedger,
                                           services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-03T02:00:00")):
        services.submit_record(submission("market", 1, PERSON))
    with clock.frozen_at(at("2021-03-03T02:00:00")):
        services.rename_subject("market", PERSON, "张三丰", "更名")
    assert services.state(PERSON.key, date(2020, 6, 1))["name"] == "张三"
    assert services.state(PERSON.key, date(2021, 6, 1))["name"] == "张三丰"
    assert services.state(PERSON.key, date(2021, 6, 1))["kind"] == "natural_person"


@pytest.mark.parametrize("command", [
    lambda s, rid: s.raise_objection("tax", subject=ENTERPRISE, target_kind="record",
                                     target_id=rid, grounds="x"),
    lambda s, rid: s.apply_repair("market", rid, evidence=["x"], commitment="y"),
    lambda s, rid: s.revoke_record(rid, actor="market", reason="x"),
    lambda s, rid: s.publish_policy("tax", {}),
])
def test_a_command_the_actor_may_not_run_is_refused_and_writes_nothing(
        city: tuple[CreditServices, UUID], command: Any) -> None:
    services, rid = city
    before = events(services.ledger)
    with pytest.raises((NotPermitted, Exception)) as refused:
        command(services, rid)
    assert "may not" in str(refused.value) or "only 'tax'" in str(refused.value)
    assert events(services.ledger) == before


@pytest.mark.initialised
def test_a_record_about_an_unregistered_subject_needs_its_name(
        ledger: CreditLedger, services: CreditServices) -> None:
    before = events(ledger)
    with pytest.raises(SubjectNotRegistered, match="is not registered: give its name"):
        services.submit_record(replace(submission("tax", 1), subject_name=None))
    assert events(ledger) == before
