"""The credit check (信用核查): before a procurement, a bid, a land sale, a subsidy, an honour, a
licence or an inspection decides, the deciding body checks the subject's credit, and the check
itself is on record.

A check is a signed event in the ledger: who checked (and for which case), whom, for what
matter, and what they were told — the lists the subject is on, the measures that apply to that
matter under the measures policy in force, and the grade. So an auditor can later ask "who
checked X, for what, and what were they told?", and whether a barred subject was given the
contract anyway. Filed under its own stream (field ``about``, not ``subject``), as the query log
is: a subject's extract does not carry who checked it.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.base import DomainError, LedgerAggregate
from domain.events import apply_schemas
from domain.policies import MATTERS, MeasuresPolicy
from domain.validation import check_text


class CheckRuleBroken(DomainError):
    pass


def answer(state: dict[str, Any], matter: str, measures: MeasuresPolicy | None,
           day: date) -> dict[str, Any]:
    """What a check of ``matter`` is told, from the subject's state on ``day``: its lists in
    force, with the measures of the policy in force that apply to the matter, and its grade."""
    if matter not in MATTERS:
        raise CheckRuleBroken(f"matter {matter!r} is not one of {', '.join(MATTERS)}")
    # a policy older than 2026.1 names no matters: then every measure of a list is told (the
    # checker decides), never none
    declared = measures is not None and any(
        m.matters for x in measures.lists.values() for m in x.measures)
    lists = []
    for listing in state["listings"]:
        if listing["status"] != "active":
            continue
        policy = measures.lists.get(listing["list"]) if measures is not None else None
        applying = [{"code": m.code, "zh": m.zh, "en": m.en} for m in
                    (policy.measures if policy is not None else ())
                    if matter in m.matters or not declared]
        lists.append({"list": listing["list"], "number": listing["number"],
                      "start": listing["start"], "ends_on": listing["ends_on"],
                      "legal_basis": listing["legal_basis"], "measures": applying})
    grade = state["grade"]
    return {
        "as_of": day.isoformat(),
        "lists": lists,
        "measures_version": measures.version if measures is not None else None,
        "barred": any(x["list"] == "black" and x["measures"] for x in lists),
        "grade": {"grade": grade["grade"], "points": grade["points"], "policy": grade["policy"]},
    }


class CreditCheck(LedgerAggregate):
    """One check: by whom, of whom, for what matter and case, and the answer given."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @event("Made")
    def __init__(self, *, actor: str, checker: str, role: str, about: str, matter: str,
                 case_number: str, answer: dict[str, Any]) -> None:
        self.checker = checker
        self.role = role
        self.about = about
        self.matter = matter
        self.case_number = case_number
        self.answer = answer

    @classmethod
    def make(cls, *, actor: str, checker: str, role: str, about: str, matter: str,
             case_number: str, answer: dict[str, Any]) -> CreditCheck:
        """``actor`` signs: the checking authority, or the platform for a checker without a
        key (an agency)."""
        if matter not in MATTERS:
            raise CheckRuleBroken(f"matter {matter!r} is not one of {', '.join(MATTERS)}")
        if not case_number.strip():
            raise CheckRuleBroken("a check names the case it is for (case_number)")
        check_text("case_number", case_number, limit=200)
        return cls(actor=actor, checker=checker, role=role, about=about, matter=matter,
                   case_number=case_number.strip(), answer=answer)


apply_schemas(CreditCheck)
