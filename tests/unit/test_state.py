"""The pure reducer: a subject's state at a date, as known at a time, from its events."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from typing import Any

from domain.events import upcast
from domain.state import REDUCER_VERSION, Fact, subject_state
from tests.unit.policy_data import DOCUMENTS

ORG = "uscc:91350100M000100Y43"
PERSON = "rid:11010519491231002X"


def at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class History:
    """Facts as the ledger would store them, in log order."""

    def __init__(self, subject: str = ORG) -> None:
        self.subject = subject
        self.facts: list[Fact] = []
        self.policy_facts = [
            Fact(i, f"policy-{i}", 1, "PolicyVersion.Published", "credit-office",
                 at("2016-01-01"), {"document": doc}) for i, doc in enumerate(DOCUMENTS)]
        self.position = len(self.policy_facts)

    def add(self, kind: str, aggregate: str, day: str, actor: str = "tax",
            **data: Any) -> None:
        self.position += 1
        version = sum(1 for f in self.facts if f.aggregate_id == aggregate) + 1
        # as proofs.facts reads a stored event: brought to its current version by its schema
        self.facts.append(Fact(self.position, aggregate, version, kind, actor, at(day),
                               upcast(kind, data)))

    def record(self, aggregate: str, item: str, decided: str, recorded: str,
               actor: str = "tax", number: str = "1") -> None:
        self.add("CreditRecord.Submitted", aggregate, recorded, actor, subject=self.subject,
                 item_code=item, decision_number=f"临税〔{decided[:4]}〕{number}号",
                 decision_date=date.fromisoformat(decided), summary="处罚", details={})

    def state(self, as_of: str, known_at: datetime | None = None) -> dict[str, Any]:
        return subject_state(self.subject, self.facts, self.policy_facts,
                             date.fromisoformat(as_of), known_at or at("2030-01-01"))


def only_record(state: dict[str, Any]) -> dict[str, Any]:
    (record,) = state["records"]
    return record


def test_an_ordinary_record_is_public_for_its_maximum_period_then_shared_for_five_years() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2026-05-01", "2026-05-03")  # 2026 rules: 3-12 months
    assert h.state("2026-04-30")["records"] == []  # not yet decided
    shown = only_record(h.state("2027-04-30"))
    assert shown["public"] and shown["shared"] and shown["status"] == "in_force"
    assert shown["disclosure_until"] == "2027-05-01"
    ended = only_record(h.state("2027-05-01"))
    assert not ended["public"] and ended["shared"]
    assert ended["disclosure_ended_by"] == "period" and ended["status"] == "disclosure_ended"
    assert not only_record(h.state("2031-05-01"))["shared"]  # Zhejiang art. 16: five years


def test_the_period_comes_from_the_catalogue_in_force_on_the_decision_date() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2024-06-01", "2024-06-02")  # 2023 rules: up to 3 years
    record = only_record(h.state("2026-11-27"))
    assert record["catalogue_version"] == "2023.1"
    assert record["disclosure_until"] == "2027-06-01" and record["public"]


def test_a_natural_persons_records_are_never_public_only_shared() -> None:
    h = History(PERSON)
    h.record("r1", "TAX-PENALTY", "2026-05-01", "2026-05-03")
    record = only_record(h.state("2026-06-01"))
    assert not record["public"] and record["shared"]


def test_minor_information_is_not_shown_under_the_2026_rules() -> None:
    h = History()
    h.record("r1", "TRANSPORT-MINOR", "2026-02-10", "2026-02-11", actor="transport")
    assert only_record(h.state("2026-03-31"))["public"]  # 2023 rules in force
    assert not only_record(h.state("2026-04-01"))["public"]  # 2026: normally not shown


def test_a_correction_is_retroactive_once_known_and_unknown_before() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2026-05-01", "2026-05-03")
    h.add("CreditRecord.Corrected", "r1", "2026-06-10", reason="笔误",
          changes={"summary": "更正"}, supersedes=1, objection=None)
    assert only_record(h.state("2026-05-20"))["summary"] == "更正"
    as_known_then = only_record(h.state("2026-05-20", known_at=at("2026-05-20")))
    assert as_known_then["summary"] == "处罚" and not as_known_then["corrected"]


def test_a_version_1_correction_without_objection_is_read() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2026-05-01", "2026-05-03")
    h.add("CreditRecord.Corrected", "r1", "2026-06-10", reason="笔误",
          changes={"summary": "旧格式"}, supersedes=1)
    assert only_record(h.state("2026-07-01"))["summary"] == "旧格式"


def test_a_revoked_record_stays_visible_as_revoked_and_counts_for_nothing() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2026-05-01", "2026-05-03")
    h.add("CreditRecord.Revoked", "r1", "2026-06-10", reason="事实有误", objection=None)
    state = h.state("2026-07-01")
    record = only_record(state)
    assert record["status"] == "revoked" and not record["public"] and not record["shared"]
    assert state["grade"]["points"] == 100


def objection_history(ruled: bool) -> History:
    h = History()
    h.record("r1", "TAX-PENALTY", "2026-05-01", "2026-05-03")
    h.add("Objection.Raised", "o1", "2026-06-01", "credit-office", subject=ORG, number="YY-1",
          target_kind="record", target_id="r1", grounds="x", raised_by="subject", agent=None,
          raised_on=date(2026, 6, 1))
    h.add("Objection.Accepted", "o1", "2026-06-02", "credit-office",
          accepted_on=date(2026, 6, 2), deadline=date(2026, 6, 9), provisional=False)
    if ruled:
        h.add("Objection.Ruled", "o1", "2026-06-08", "credit-office", outcome="reject",
              reasoning="无误", changes={}, ruled_on=date(2026, 6, 8), late=False)
    return h


def test_a_record_under_objection_shows_the_mark_from_acceptance_until_the_ruling() -> None:
    h = objection_history(ruled=True)
    assert not only_record(h.state("2026-06-01"))["under_objection"]
    marked = only_record(h.state("2026-06-02"))
    assert marked["under_objection"] and marked["objections"] == ["YY-1"]
    assert only_record(h.state("2026-06-07"))["under_objection"]
    assert not only_record(h.state("2026-06-08"))["under_objection"]


def test_an_unruled_objection_is_overdue_after_its_deadline() -> None:
    h = objection_history(ruled=False)
    assert not h.state("2026-06-09")["objections"][0]["overdue"]
    late = h.state("2026-06-10")
    assert late["objections"][0]["overdue"] and late["objections"][0]["status"] == "accepted"
    assert only_record(late)["under_objection"]


def test_a_repair_ends_display_and_sharing_from_its_approval_and_keeps_the_record() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2026-01-10", "2026-01-11")
    h.add("CreditRecord.Repaired", "r1", "2026-05-20", "credit-office", application="XF-1")
    before = only_record(h.state("2026-05-19"))
    after = only_record(h.state("2026-05-20"))
    assert before["public"] and not before["repaired"]
    assert after["repaired"] and not after["public"] and not after["shared"]
    assert after["status"] == "repaired" and after["id"] == "r1"


def listing_history() -> History:
    h = History()
    h.record("r1", "TAX-MAJOR-VIOLATION", "2024-03-01", "2024-03-02")
    h.add("Listing.Listed", "l1", "2024-03-25", "credit-office", list_name="black", subject=ORG,
          number="MD-1", legal_basis="条例", basis_records=["r1"],
          notified_on=date(2024, 3, 20), start=date(2024, 4, 1), planned_end=date(2027, 4, 1),
          removal_conditions="履行", measures_version="2016.1")
    return h


def test_a_listing_is_active_from_its_start_until_its_planned_end() -> None:
    h = listing_history()
    assert h.state("2024-03-24")["listings"] == []  # not yet decided
    assert h.state("2024-03-31")["listings"][0]["status"] == "pending"
    active = h.state("2024-04-01")["listings"][0]
    assert active["status"] == "active"
    assert {m["code"] for m in active["measures"]} >= {"NO-PROCUREMENT", "NO-BIDDING"}
    expired = h.state("2027-04-01")["listings"][0]
    assert expired["status"] == "expired" and expired["measures"] == []


def test_a_removed_listing_ends_on_its_removal() -> None:
    h = listing_history()
    h.add("Listing.Removed", "l1", "2025-01-10", "credit-office", reason="已履行",
          removed_on=date(2025, 1, 10), objection=None)
    assert h.state("2025-01-09")["listings"][0]["status"] == "active"
    assert h.state("2025-01-10")["listings"][0]["status"] == "removed"


def test_the_basis_record_of_an_active_black_listing_stays_shared() -> None:
    h = History()
    h.record("r1", "TAX-MAJOR-VIOLATION", "2020-03-01", "2020-03-02")
    h.add("Listing.Listed", "l1", "2024-04-01", "credit-office", list_name="black", subject=ORG,
          number="MD-1", legal_basis="条例", basis_records=["r1"],
          notified_on=date(2024, 3, 20), start=date(2024, 4, 1), planned_end=date(2027, 4, 1),
          removal_conditions="履行", measures_version="2016.1")
    assert only_record(h.state("2025-03-02"))["shared"]  # 5 years passed, still listed
    assert not only_record(h.state("2027-04-02"))["shared"]


def test_the_grade_follows_the_policy_in_force_and_explains_its_points() -> None:
    h = History()
    h.record("r1", "TAX-PENALTY", "2022-06-01", "2022-06-02")  # ordinary, up to 12 months (2019)
    in_2022 = h.state("2022-12-31")["grade"]
    assert (in_2022["policy"], in_2022["points"], in_2022["grade"]) == ("2016.1", 90, "A")
    assert in_2022["explanation"][1] == {
        "points": -10, "reason": "TAX-PENALTY 临税〔2022〕1号 (ordinary, 2022-06-01)"}
    in_2023 = h.state("2023-01-01")["grade"]
    assert (in_2023["policy"], in_2023["points"], in_2023["grade"]) == ("2023.1", 88, "B")
    assert h.state("2023-06-01")["grade"]["points"] == 100  # past its disclosure period


def test_a_black_listing_overrides_the_grade_to_d() -> None:
    grade = listing_history().state("2024-05-01")["grade"]
    assert grade["grade"] == "D" and grade["override"] == "on the black list: grade D"
    assert grade["points"] == 65  # 2023 grading: serious -35


def test_commitments_kept_and_broken_count_in_the_grade() -> None:
    h = History()
    h.add("Commitment.Made", "c1", "2024-01-05", "credit-office", subject=ORG, number="CN-1",
          text="按期整改", context="审批", made_on=date(2024, 1, 5), due_on=None)
    h.add("Commitment.Settled", "c1", "2024-07-01", "market", kept=False, note="未整改",
          settled_on=date(2024, 7, 1))
    assert h.state("2024-06-30")["grade"]["points"] == 100
    assert h.state("2024-07-01")["grade"]["points"] == 80  # 2023 grading: broken -20
    assert h.state("2024-07-01")["commitments"][0]["outcome"] == "broken"


def test_the_state_is_deterministic_whatever_order_the_facts_arrive_in() -> None:
    h = listing_history()
    h.add("CreditRecord.Corrected", "r1", "2024-06-10", reason="笔误",
          changes={"summary": "更正"}, supersedes=1, objection=None)
    expected = json.dumps(h.state("2025-01-01"), sort_keys=True)
    shuffled = list(h.facts)
    random.Random(4).shuffle(shuffled)
    again = subject_state(ORG, shuffled, list(reversed(h.policy_facts)), date(2025, 1, 1),
                          at("2030-01-01"))
    assert json.dumps(again, sort_keys=True) == expected
    assert again["reducer"] == REDUCER_VERSION


def test_the_policy_book_made_once_is_the_book_of_exactly_the_policies_known_then() -> None:
    """A rebuild asks for the policy book once per subject and gets the one made first; the
    books of two moments must still hold only what was published by each."""
    from domain.state import policy_book
    facts = History().policy_facts
    later = [facts[-1]._replace(position=99, recorded_at=at("2020-01-01"))]
    before = policy_book(facts + later, at("2019-01-01"))
    after = policy_book(facts + later, at("2021-01-01"))
    assert before is policy_book(list(reversed(facts + later)), at("2019-06-01"))  # same events
    assert after is not before
    count = lambda book: sum(len(v) for v in book.versions.values())  # noqa: E731
    assert count(after) == count(before) + 1
