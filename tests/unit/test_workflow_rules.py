"""The rules of objections, credit repair, lists and commitments, with the regulations' numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain import clock
from domain.base import ImpossibleDate
from domain.commitments import Commitment, CommitmentRuleBroken
from domain.listings import Listing, ListingRuleBroken, check_basis
from domain.objections import (
    AlreadyExtended,
    InvalidOutcome,
    Objection,
    ObjectionNotOpen,
)
from domain.permissions import COMMANDS, NotPermitted, check_permitted, matrix_markdown
from domain.repairs import (
    RecordFacts,
    RepairApplication,
    RepairNotAllowed,
    RepairRuleBroken,
    eligibility,
)
from tests.unit.policy_data import calendar

SUBJECT = "uscc:91350100M000100Y43"


def objection(target_kind: str = "record") -> Objection:
    return Objection.raise_(actor="credit-office", subject=SUBJECT, number="YY-1",
                            target_kind=target_kind, target_id="r1", grounds="记录有误",
                            raised_on=date(2024, 9, 26))


# -- objections (Zhejiang regulation 2017, arts. 30-31) ----------------------------------------


def test_a_ruling_is_due_5_working_days_after_acceptance() -> None:
    o = objection()
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    assert o.deadline == date(2024, 10, 10)  # the National Day holiday is not counted


def test_the_period_is_extended_once_to_20_working_days_in_all() -> None:
    o = objection()
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    o.extend(actor="credit-office", reason="情况复杂", calendar=calendar(),
             extended_on=date(2024, 10, 8))
    assert o.deadline == date(2024, 10, 30)  # 29 Sep and 12 Oct are worked Sundays/Saturdays
    with pytest.raises(AlreadyExtended):
        o.extend(actor="credit-office", reason="again", calendar=calendar(),
                 extended_on=date(2024, 10, 9))


@pytest.mark.parametrize(("extended_on", "message"), [
    (date(2024, 9, 26), "the extension date 2024-09-26 is before the acceptance date 2024-09-27"),
    (date(2024, 10, 11), "the extension date 2024-10-11 is after the deadline it extends, "
                         "2024-10-10, had passed"),
    (date(2026, 12, 2), "the extension date 2026-12-02 is after today, 2026-12-01"),
])
def test_an_extension_dated_when_it_cannot_be_is_refused(extended_on: date, message: str) -> None:
    o = objection()
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    with clock.frozen_at(datetime(2026, 12, 1, 4, tzinfo=UTC)), \
            pytest.raises(ImpossibleDate, match=message):
        o.extend(actor="credit-office", reason="情况复杂", calendar=calendar(),
                 extended_on=extended_on)
    assert o.deadline == date(2024, 10, 10) and not o.extended


def test_an_extension_needs_a_reason() -> None:
    o = objection()
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    with pytest.raises(InvalidOutcome, match="needs its reason"):
        o.extend(actor="credit-office", reason=" ", calendar=calendar(),
                 extended_on=date(2024, 9, 30))


def test_a_ruling_after_the_deadline_is_recorded_as_late() -> None:
    o = objection()
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    o.rule(actor="credit-office", outcome="reject", reasoning="无误", ruled_on=date(2024, 10, 11))
    assert vars(o.collect_events()[-1])["late"] is True


@pytest.mark.parametrize("target, outcome, changes, message", [
    ("record", "remove_from_list", None, "about a record is ruled"),
    ("listing", "revoke", None, "about a listing is ruled"),
    ("record", "correct", None, "names the fields it changes"),
    ("record", "reject", {"summary": "x"}, "changes no fields"),
])
def test_outcomes_must_fit_the_target(target: str, outcome: str, changes: dict[str, str] | None,
                                      message: str) -> None:
    o = objection(target)
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    with pytest.raises(InvalidOutcome, match=message):
        o.rule(actor="credit-office", outcome=outcome, reasoning="x", ruled_on=date(2024, 10, 8),
               changes=changes)


def test_only_an_accepted_objection_is_ruled_and_only_a_ruling_is_reviewed() -> None:
    o = objection()
    with pytest.raises(ObjectionNotOpen, match="is raised"):
        o.rule(actor="credit-office", outcome="reject", reasoning="x", ruled_on=date(2024, 10, 8))
    with pytest.raises(ObjectionNotOpen):
        o.request_review(actor="credit-office", grounds="x", requested_on=date(2024, 10, 8))
    o.decline(actor="credit-office", reason="非本人", declined_on=date(2024, 9, 27))
    with pytest.raises(ObjectionNotOpen, match="is declined"):
        o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())


def test_a_review_upholds_or_revises_to_another_outcome() -> None:
    o = objection()
    o.accept(actor="credit-office", accepted_on=date(2024, 9, 27), calendar=calendar())
    o.rule(actor="credit-office", outcome="reject", reasoning="x", ruled_on=date(2024, 10, 8))
    o.request_review(actor="credit-office", grounds="不服", requested_on=date(2024, 10, 9))
    with pytest.raises(InvalidOutcome, match="names a different outcome"):
        o.rule_review(actor="credit-office", result="revised", reasoning="x",
                      ruled_on=date(2024, 10, 12), outcome="reject")
    o.rule_review(actor="credit-office", result="revised", reasoning="原处理有误",
                  ruled_on=date(2024, 10, 12), outcome="revoke")
    assert o.outcome == "revoke" and o.review_status == "revised"


def test_an_agent_is_named() -> None:
    with pytest.raises(InvalidOutcome, match="names the agent"):
        Objection.raise_(actor="credit-office", subject=SUBJECT, number="YY-2",
                         target_kind="record", target_id="r1", grounds="x",
                         raised_on=date(2024, 9, 26), raised_by="agent")


# -- credit repair ---------------------------------------------------------------------------


def facts(**changes: object) -> RecordFacts:
    values: dict[str, object] = dict(
        record_id="r1", item_code="TAX-PENALTY", decision_date=date(2026, 1, 10), negative=True,
        revoked=False, repaired=False, repairable=True, min_disclosure_months=3,
        black_listed=False)
    values.update(changes)
    return RecordFacts(**values)  # type: ignore[arg-type]


def failed(checks: list[object]) -> set[str]:
    return {c.rule for c in checks if not c.passed}  # type: ignore[attr-defined]


def test_an_eligible_application_passes_every_rule() -> None:
    checks = eligibility(facts(), date(2026, 4, 10), ["罚款已缴纳"], "守信承诺")
    assert failed(checks) == set()
    assert [c.rule for c in checks] == ["negative_in_force", "not_repaired", "repairable_item",
                                        "minimum_period", "not_black_listed", "evidence",
                                        "commitment"]


@pytest.mark.parametrize("changes, applied, rule, explanation", [
    ({}, date(2026, 4, 9), "minimum_period", "runs until 2026-04-10"),
    ({"min_disclosure_months": 12}, date(2026, 4, 10), "minimum_period", "12 months runs until"),
    ({"black_listed": True}, date(2026, 4, 10), "not_black_listed", "Zhejiang art. 32"),
    ({"repairable": False}, date(2026, 4, 10), "repairable_item", "excludes item TAX-PENALTY"),
    ({"revoked": True}, date(2026, 4, 10), "negative_in_force", "negative information in force"),
    ({"negative": False}, date(2026, 4, 10), "negative_in_force", "negative information in force"),
    ({"repaired": True}, date(2026, 4, 10), "not_repaired", "already repaired"),
])
def test_each_repair_rule_refuses_with_its_explanation(changes: dict[str, object], applied: date,
                                                       rule: str, explanation: str) -> None:
    checks = eligibility(facts(**changes), applied, ["罚款已缴纳"], "守信承诺")
    assert failed(checks) == {rule}
    assert explanation in next(c.explanation for c in checks if c.rule == rule)


def test_repair_needs_evidence_and_a_commitment() -> None:
    checks = eligibility(facts(), date(2026, 4, 10), [" "], "")
    assert failed(checks) == {"evidence", "commitment"}


def test_approval_of_an_ineligible_application_is_refused_and_refusal_is_explained() -> None:
    application = RepairApplication.apply(actor="credit-office", subject=SUBJECT, number="XF-1",
                                          record_id="r1", evidence=["已整改"],
                                          commitment="承诺", applied_on=date(2026, 2, 1))
    with pytest.raises(RepairNotAllowed, match="the minimum period of 3 months runs until"):
        application.decide(actor="credit-office", approve=True, facts=facts(),
                           decided_on=date(2026, 2, 10))
    checks = application.decide(actor="credit-office", approve=False, facts=facts(),
                                decided_on=date(2026, 2, 10))
    assert failed(checks) == {"minimum_period"}
    decided = application.collect_events()[-1]
    assert vars(decided)["approved"] is False
    assert {c["rule"] for c in vars(decided)["checks"] if not c["passed"]} == {"minimum_period"}


def test_refusing_an_eligible_application_needs_a_reason() -> None:
    application = RepairApplication.apply(actor="credit-office", subject=SUBJECT, number="XF-2",
                                          record_id="r1", evidence=["已整改"],
                                          commitment="承诺", applied_on=date(2026, 5, 1))
    with pytest.raises(RepairRuleBroken, match="needs a reason"):
        application.decide(actor="credit-office", approve=False, facts=facts(),
                           decided_on=date(2026, 5, 5))


# -- lists -----------------------------------------------------------------------------------


def black(**changes: object) -> Listing:
    values: dict[str, object] = dict(
        actor="credit-office", list_name="black", subject=SUBJECT, number="MD-1",
        legal_basis="条例第二十四条", basis_records=["r1"], notified_on=date(2026, 1, 1),
        start=date(2026, 1, 15), planned_end=date(2029, 1, 15), removal_conditions="履行义务",
        measures_version="2016.1")
    values.update(changes)
    return Listing.list_subject(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("changes, message", [
    ({"legal_basis": ""}, "legal basis"),
    ({"basis_records": []}, "names the records"),
    ({"notified_on": None}, "notified before"),
    ({"notified_on": date(2026, 1, 15)}, "notified before"),
    ({"removal_conditions": " "}, "conditions of its removal"),
    ({"planned_end": date(2026, 1, 15)}, "planned end comes after its start"),
    ({"list_name": "grey"}, "black list and a red list"),
])
def test_a_black_listing_rests_on_basis_notice_and_removal_conditions(changes: dict[str, object],
                                                                      message: str) -> None:
    with pytest.raises(ListingRuleBroken, match=message):
        black(**changes)


def test_the_basis_of_a_black_listing_is_serious_negative_information_in_force() -> None:
    check_basis("black", [{"id": "r1", "in_force": True, "polarity": "negative",
                           "severity": "serious"}])
    with pytest.raises(ListingRuleBroken, match="not serious negative information"):
        check_basis("black", [{"id": "r1", "in_force": True, "polarity": "negative",
                               "severity": "ordinary"}])
    with pytest.raises(ListingRuleBroken, match="not in force"):
        check_basis("red", [{"id": "r2", "in_force": False}])


def test_a_removal_falls_inside_the_listing() -> None:
    listing = black()
    with clock.frozen_at(datetime(2029, 6, 1, tzinfo=UTC)):
        with pytest.raises(ImpossibleDate, match="the removal date 2026-01-01 is before the "
                                                 "listing's start 2026-01-15"):
            listing.remove(actor="credit-office", reason="x", removed_on=date(2026, 1, 1))
        with pytest.raises(ListingRuleBroken, match="ends on 2029-01-15 by itself"):
            listing.remove(actor="credit-office", reason="x", removed_on=date(2029, 2, 1))
        listing.remove(actor="credit-office", reason="已履行", removed_on=date(2027, 3, 1))
        with pytest.raises(ListingRuleBroken, match="already removed"):
            listing.remove(actor="credit-office", reason="x", removed_on=date(2027, 3, 2))
    with clock.frozen_at(datetime(2027, 2, 1, tzinfo=UTC)), \
            pytest.raises(ImpossibleDate, match="the removal date 2027-03-01 is after today"):
        black().remove(actor="credit-office", reason="已履行", removed_on=date(2027, 3, 1))


# -- commitments -----------------------------------------------------------------------------


def test_a_commitment_is_settled_once_as_kept_or_broken() -> None:
    c = Commitment.make(actor="credit-office", subject=SUBJECT, number="CN-1", text="按期整改",
                        context="审批", made_on=date(2026, 1, 1), due_on=date(2026, 6, 30))
    with pytest.raises(ImpossibleDate, match="the settlement date 2025-12-01 is before the "
                                             "commitment date 2026-01-01"):
        c.settle(actor="market", kept=True, note="x", settled_on=date(2025, 12, 1))
    c.settle(actor="market", kept=False, note="未整改", settled_on=date(2026, 7, 1))
    assert c.outcome == "broken"
    with pytest.raises(CommitmentRuleBroken, match="already settled"):
        c.settle(actor="market", kept=True, note="x", settled_on=date(2026, 7, 2))


# -- who may do what -------------------------------------------------------------------------


@pytest.mark.parametrize("command, role, allowed", [
    ("record.submit", "department", True),
    ("record.submit", "platform", False),
    ("objection.rule", "credit_office", True),
    ("objection.rule", "department", False),
    ("repair.decide", "department", False),
    ("keys.rotate", "platform", True),
    ("keys.rotate", "credit_office", False),
    ("policy.publish", "credit_office", True),
    ("list.add", "department", True),
    ("objection.raise", "subject", False),  # a subject never signs: the window records it
])
def test_the_permission_matrix(command: str, role: str, allowed: bool) -> None:
    if allowed:
        check_permitted(command, "someone", role)
    else:
        with pytest.raises(NotPermitted):
            check_permitted(command, "someone", role)


def test_the_written_matrix_is_the_table_in_code() -> None:
    from pathlib import Path
    written = (Path(__file__).resolve().parents[2] / "docs" / "PERMISSIONS.md").read_text()
    assert matrix_markdown() in written
    for command in COMMANDS:
        assert f"`{command}`" in written
