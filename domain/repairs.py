"""Credit repair (信用修复).

A subject that has corrected its conduct applies, with evidence and a public credit commitment; the
credit office decides. Eligibility follows the rules in force on the application date:
1. the record is negative information in force (not revoked, not already repaired);
2. the catalogue marks the item repairable (law excludes some, e.g. the court's debtor list);
3. the item's minimum disclosure period has passed since the decision date;
4. the subject is not on the serious-dishonesty (black) list (Zhejiang regulation, art. 32);
5. there is evidence that the conduct was corrected and obligations performed;
6. the subject has made a public credit commitment.
A refusal explains itself rule by rule. An approved repair ends public display and sharing; the
record stays in the ledger, marked repaired.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import DomainError, LedgerAggregate, check_not_before, check_not_future
from domain.events import apply_schemas
from domain.periods import add_months


class RepairRuleBroken(DomainError):
    pass


class RepairNotAllowed(RepairRuleBroken):
    def __init__(self, failed: list[RuleCheck]) -> None:
        super().__init__("repair is not allowed: " + "; ".join(c.explanation for c in failed))
        self.failed = failed


@dataclass(frozen=True)
class RuleCheck:
    rule: str
    passed: bool
    explanation: str


@dataclass(frozen=True)
class RecordFacts:
    """What the eligibility rules need to know about the record and its subject."""

    record_id: str
    item_code: str
    decision_date: date
    negative: bool
    revoked: bool
    repaired: bool
    repairable: bool
    min_disclosure_months: int
    black_listed: bool


def repair_id(number: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"credit-ledger:repair:{number}")


def eligibility(facts: RecordFacts, applied_on: date, evidence: list[str],
                commitment: str) -> list[RuleCheck]:
    """Every rule, passed or not, with its explanation."""
    earliest = add_months(facts.decision_date, facts.min_disclosure_months)
    return [
        RuleCheck("negative_in_force", facts.negative and not facts.revoked,
                  "the record is negative information in force" if facts.negative and not
                  facts.revoked else "only negative information in force can be repaired"),
        RuleCheck("not_repaired", not facts.repaired,
                  "the record has not been repaired before" if not facts.repaired
                  else "the record is already repaired"),
        RuleCheck("repairable_item", facts.repairable,
                  f"item {facts.item_code} may be repaired" if facts.repairable
                  else f"the catalogue excludes item {facts.item_code} from repair"),
        RuleCheck("minimum_period", applied_on >= earliest,
                  f"the minimum period of {facts.min_disclosure_months} months ended on "
                  f"{earliest.isoformat()}" if applied_on >= earliest else
                  f"the minimum period of {facts.min_disclosure_months} months runs until "
                  f"{earliest.isoformat()}"),
        RuleCheck("not_black_listed", not facts.black_listed,
                  "the subject is not on the serious-dishonesty list" if not facts.black_listed
                  else "subjects on the serious-dishonesty list cannot repair (Zhejiang art. 32)"),
        RuleCheck("evidence", bool([e for e in evidence if e.strip()]),
                  "evidence of corrected conduct is given" if any(e.strip() for e in evidence)
                  else "evidence that the conduct was corrected is missing"),
        RuleCheck("commitment", bool(commitment.strip()),
                  "a public credit commitment is given" if commitment.strip()
                  else "a public credit commitment is missing"),
    ]


class RepairApplication(LedgerAggregate):
    """One application to repair one record."""

    @staticmethod
    def create_id(*, number: str, **_: Any) -> UUID:
        return repair_id(number)

    @event("Applied")
    def __init__(self, *, actor: str, subject: str, number: str, record_id: str,
                 evidence: list[str], commitment: str, applied_on: date) -> None:
        self.subject = subject
        self.number = number
        self.record_id = record_id
        self.evidence = evidence
        self.commitment = commitment
        self.applied_on = applied_on
        self.decision: str | None = None

    @classmethod
    def apply(cls, *, actor: str, subject: str, number: str, record_id: str,
              evidence: list[str], commitment: str, applied_on: date) -> RepairApplication:
        if not number.strip():
            raise RepairRuleBroken("a repair application has a number")
        check_not_future("the application date", applied_on)
        return cls(actor=actor, subject=subject, number=number.strip(), record_id=record_id,
                   evidence=[e.strip() for e in evidence if e.strip()],
                   commitment=commitment.strip(), applied_on=applied_on)

    @property
    def subject_key(self) -> str:
        return self.subject

    def decide(self, *, actor: str, approve: bool, facts: RecordFacts, decided_on: date,
               reason: str = "") -> list[RuleCheck]:
        """Approve or refuse. Approval needs every rule passed; a refusal records why."""
        if self.decision is not None:
            raise RepairRuleBroken(f"repair application {self.number} is already {self.decision}")
        check_not_future("the decision date", decided_on)
        check_not_before("the decision date", decided_on, "the application date", self.applied_on)
        checks = eligibility(facts, self.applied_on, self.evidence, self.commitment)
        failed = [c for c in checks if not c.passed]
        if approve and failed:
            raise RepairNotAllowed(failed)
        if not approve and not failed and not reason.strip():
            raise RepairRuleBroken("refusing an eligible application needs a reason")
        self._decided(actor=actor, approved=approve, decided_on=decided_on,
                      checks=[asdict(c) for c in checks], reason=reason.strip())
        return checks

    @event("Decided")
    def _decided(self, *, actor: str, approved: bool, decided_on: date,
                 checks: list[dict[str, Any]], reason: str) -> None:
        self.decision = "approved" if approved else "refused"


apply_schemas(RepairApplication)
