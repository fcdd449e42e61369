"""Objections (异议) under the Zhejiang public credit regulation (2017), arts. 30-31.

The subject (or its agent) objects through the 信用临安 window; the credit office accepts it, and
from acceptance the record is marked "under objection" wherever it is shown. The office rules within
5 working days of acceptance, extendable once, with a reason, to 20 working days in all. Outcomes:
factual error → revoke; clerical error → correct; omission → complete; period expired → end public
display; wrongly listed → remove from the list; or reject. The subject may ask for a review (复核)
of the ruling. The objection file is kept.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import (
    DomainError,
    ImpossibleDate,
    LedgerAggregate,
    check_not_before,
    check_not_future,
)
from domain.calendar import add_working_days, is_provisional
from domain.events import apply_schemas
from domain.policies import CalendarPolicy

RULING_DAYS = 5
EXTENDED_DAYS = 20
TARGETS = ("record", "listing")
RAISERS = ("subject", "agent")
OUTCOMES = {
    "record": ("revoke", "correct", "complete", "end_disclosure", "reject"),
    "listing": ("remove_from_list", "reject"),
}
REVIEW_OUTCOMES = ("upheld", "revised")


class ObjectionRuleBroken(DomainError):
    pass


class ObjectionNotOpen(ObjectionRuleBroken):
    def __init__(self, number: str, status: str) -> None:
        super().__init__(f"objection {number} is {status}, not awaiting this step")


class AlreadyExtended(ObjectionRuleBroken):
    def __init__(self, number: str) -> None:
        super().__init__(
            f"objection {number} was already extended once (to {EXTENDED_DAYS} working days)"
        )


class InvalidOutcome(ObjectionRuleBroken):
    pass


def objection_id(number: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"credit-ledger:objection:{number}")


class Objection(LedgerAggregate):
    """One objection, from receipt to ruling and review."""

    @staticmethod
    def create_id(*, number: str, **_: Any) -> UUID:
        return objection_id(number)

    @event("Raised")
    def __init__(self, *, actor: str, subject: str, number: str, target_kind: str,
                 target_id: str, grounds: str, raised_by: str, agent: str | None,
                 raised_on: date) -> None:
        self.subject = subject
        self.number = number
        self.target_kind = target_kind
        self.target_id = target_id
        self.grounds = grounds
        self.raised_by = raised_by
        self.agent = agent
        self.raised_on = raised_on
        self.status = "raised"
        self.accepted_on: date | None = None
        self.deadline: date | None = None
        self.extended = False
        self.outcome: str | None = None
        self.ruled_on: date | None = None
        self.review_status: str | None = None
        self.review_requested_on: date | None = None

    @classmethod
    def raise_(cls, *, actor: str, subject: str, number: str, target_kind: str, target_id: str,
               grounds: str, raised_on: date, raised_by: str = "subject",
               agent: str | None = None) -> Objection:
        """Receive an objection at the window (the credit office records it for the subject)."""
        if target_kind not in TARGETS:
            raise InvalidOutcome(f"an objection is about a record or a listing, not {target_kind!r}")
        if raised_by not in RAISERS:
            raise InvalidOutcome(f"an objection is raised by the subject or its agent, not {raised_by!r}")
        if raised_by == "agent" and not (agent and agent.strip()):
            raise InvalidOutcome("an objection raised by an agent names the agent")
        if not grounds.strip():
            raise InvalidOutcome("an objection states its grounds")
        if not number.strip():
            raise InvalidOutcome("an objection has a number")
        check_not_future("the objection date", raised_on)
        return cls(actor=actor, subject=subject, number=number.strip(), target_kind=target_kind,
                   target_id=target_id, grounds=grounds.strip(), raised_by=raised_by,
                   agent=agent.strip() if agent else None, raised_on=raised_on)

    @property
    def subject_key(self) -> str:
        return self.subject

    def accept(self, *, actor: str, accepted_on: date, calendar: CalendarPolicy) -> None:
        """Accept (受理): from now the target is marked under objection; the ruling is due in 5
        working days."""
        self._require("raised")
        check_not_future("the acceptance date", accepted_on)
        check_not_before("the acceptance date", accepted_on, "the objection date", self.raised_on)
        deadline = add_working_days(calendar, accepted_on, RULING_DAYS)
        self._accepted(actor=actor, accepted_on=accepted_on, deadline=deadline,
                       provisional=is_provisional(calendar, accepted_on, deadline))

    @event("Accepted")
    def _accepted(self, *, actor: str, accepted_on: date, deadline: date,
                  provisional: bool) -> None:
        self.status = "accepted"
        self.accepted_on = accepted_on
        self.deadline = deadline

    def decline(self, *, actor: str, reason: str, declined_on: date) -> None:
        """Decline to accept (for example: not raised by the subject or its agent)."""
        self._require("raised")
        if not reason.strip():
            raise InvalidOutcome("declining an objection needs a reason")
        check_not_future("the date it was declined", declined_on)
        check_not_before("the date it was declined", declined_on, "the objection date",
                         self.raised_on)
        self._declined(actor=actor, reason=reason.strip(), declined_on=declined_on)

    @event("Declined")
    def _declined(self, *, actor: str, reason: str, declined_on: date | None) -> None:
        self.status = "declined"

    def extend(self, *, actor: str, reason: str, calendar: CalendarPolicy,
               extended_on: date) -> None:
        """Extend the ruling period once, for a complex case, to 20 working days in all: on a
        day from the acceptance to the deadline it extends, not after that deadline has passed."""
        self._require("accepted")
        if self.extended:
            raise AlreadyExtended(self.number)
        if not reason.strip():
            raise InvalidOutcome("an extension needs its reason")
        assert self.accepted_on is not None and self.deadline is not None
        check_not_future("the extension date", extended_on)
        check_not_before("the extension date", extended_on, "the acceptance date",
                         self.accepted_on)
        if extended_on > self.deadline:
            raise ImpossibleDate(f"the extension date {extended_on.isoformat()} is after the "
                                 f"deadline it extends, {self.deadline.isoformat()}, had passed")
        deadline = add_working_days(calendar, self.accepted_on, EXTENDED_DAYS)
        self._extended(actor=actor, reason=reason.strip(), deadline=deadline,
                       provisional=is_provisional(calendar, self.accepted_on, deadline),
                       extended_on=extended_on)

    @event("Extended")
    def _extended(self, *, actor: str, reason: str, deadline: date, provisional: bool,
                  extended_on: date | None) -> None:
        self.extended = True
        self.deadline = deadline

    def rule(self, *, actor: str, outcome: str, reasoning: str, ruled_on: date,
             changes: dict[str, Any] | None = None) -> None:
        """Rule on the objection. ``changes`` are the corrected fields for correct/complete."""
        self._require("accepted")
        check_outcome(self.target_kind, outcome, changes)
        if not reasoning.strip():
            raise InvalidOutcome("a ruling gives its reasoning")
        assert self.accepted_on is not None and self.deadline is not None
        check_not_future("the ruling date", ruled_on)
        check_not_before("the ruling date", ruled_on, "the acceptance date", self.accepted_on)
        self._ruled(actor=actor, outcome=outcome, reasoning=reasoning.strip(),
                    changes=dict(changes or {}), ruled_on=ruled_on, late=ruled_on > self.deadline)

    @event("Ruled")
    def _ruled(self, *, actor: str, outcome: str, reasoning: str, changes: dict[str, Any],
               ruled_on: date, late: bool) -> None:
        self.status = "ruled"
        self.outcome = outcome
        self.ruled_on = ruled_on

    def request_review(self, *, actor: str, grounds: str, requested_on: date) -> None:
        """The subject asks for a review (复核) of the ruling."""
        self._require("ruled")
        if self.review_status is not None:
            raise ObjectionNotOpen(self.number, f"already under review ({self.review_status})")
        if not grounds.strip():
            raise InvalidOutcome("a review request states its grounds")
        assert self.ruled_on is not None
        check_not_future("the review request date", requested_on)
        check_not_before("the review request date", requested_on, "the ruling date",
                         self.ruled_on)
        self._review_requested(actor=actor, grounds=grounds.strip(), requested_on=requested_on)

    @event("ReviewRequested")
    def _review_requested(self, *, actor: str, grounds: str, requested_on: date) -> None:
        self.review_status = "requested"
        self.review_requested_on = requested_on

    def rule_review(self, *, actor: str, result: str, reasoning: str, ruled_on: date,
                    outcome: str | None = None, changes: dict[str, Any] | None = None) -> None:
        """Rule on the review: uphold the ruling, or revise it to ``outcome``."""
        if self.review_status != "requested":
            raise ObjectionNotOpen(self.number, "not under review")
        if result not in REVIEW_OUTCOMES:
            raise InvalidOutcome(f"a review is upheld or revised, not {result!r}")
        if result == "revised":
            if outcome is None or outcome == self.outcome:
                raise InvalidOutcome("a revised ruling names a different outcome")
            check_outcome(self.target_kind, outcome, changes)
        elif outcome is not None:
            raise InvalidOutcome("an upheld ruling keeps its outcome")
        if not reasoning.strip():
            raise InvalidOutcome("a review ruling gives its reasoning")
        assert self.review_requested_on is not None
        check_not_future("the review ruling date", ruled_on)
        check_not_before("the review ruling date", ruled_on, "the review request date",
                         self.review_requested_on)
        self._review_ruled(actor=actor, result=result, outcome=outcome,
                           changes=dict(changes or {}), reasoning=reasoning.strip(),
                           ruled_on=ruled_on)

    @event("ReviewRuled")
    def _review_ruled(self, *, actor: str, result: str, outcome: str | None,
                      changes: dict[str, Any], reasoning: str, ruled_on: date) -> None:
        self.review_status = result
        if outcome is not None:
            self.outcome = outcome

    def _require(self, status: str) -> None:
        if self.status != status:
            raise ObjectionNotOpen(self.number, self.status)


def check_outcome(target_kind: str, outcome: str, changes: dict[str, Any] | None) -> None:
    allowed = OUTCOMES[target_kind]
    if outcome not in allowed:
        raise InvalidOutcome(
            f"an objection about a {target_kind} is ruled {', '.join(allowed)}, not {outcome!r}"
        )
    if outcome in ("correct", "complete") and not changes:
        raise InvalidOutcome(f"a ruling to {outcome} the record names the fields it changes")
    if outcome not in ("correct", "complete") and changes:
        raise InvalidOutcome(f"a ruling to {outcome} changes no fields")


apply_schemas(Objection)
