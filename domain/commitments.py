"""Credit commitments (信用承诺): a subject's promise, and whether it was kept. Both are part of the
subject's record, and the grading policy counts them."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import DomainError, LedgerAggregate, check_not_before, check_not_future
from domain.events import apply_schemas


class CommitmentRuleBroken(DomainError):
    pass


def commitment_id(number: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"credit-ledger:commitment:{number}")


class Commitment(LedgerAggregate):
    """A promise made by a subject (recorded by the authority that received it)."""

    @staticmethod
    def create_id(*, number: str, **_: Any) -> UUID:
        return commitment_id(number)

    @event("Made")
    def __init__(self, *, actor: str, subject: str, number: str, text: str, context: str,
                 made_on: date, due_on: date | None) -> None:
        self.subject = subject
        self.number = number
        self.made_on = made_on
        self.due_on = due_on
        self.outcome: str | None = None

    @classmethod
    def make(cls, *, actor: str, subject: str, number: str, text: str, context: str,
             made_on: date, due_on: date | None = None) -> Commitment:
        if not text.strip():
            raise CommitmentRuleBroken("a commitment states what is promised")
        if not number.strip():
            raise CommitmentRuleBroken("a commitment has a number")
        check_not_future("the commitment date", made_on)
        if due_on is not None and due_on < made_on:
            raise CommitmentRuleBroken("a commitment cannot fall due before it is made")
        return cls(actor=actor, subject=subject, number=number.strip(), text=text.strip(),
                   context=context.strip(), made_on=made_on, due_on=due_on)

    @property
    def subject_key(self) -> str:
        return self.subject

    def settle(self, *, actor: str, kept: bool, note: str, settled_on: date) -> None:
        """Record whether the commitment was kept."""
        if self.outcome is not None:
            raise CommitmentRuleBroken(f"commitment {self.number} was already settled")
        check_not_future("the settlement date", settled_on)
        check_not_before("the settlement date", settled_on, "the commitment date", self.made_on)
        if not note.strip():
            raise CommitmentRuleBroken("settling a commitment records what was found")
        self._settled(actor=actor, kept=kept, note=note.strip(), settled_on=settled_on)

    @event("Settled")
    def _settled(self, *, actor: str, kept: bool, note: str, settled_on: date) -> None:
        self.outcome = "kept" if kept else "broken"


apply_schemas(Commitment)
