"""Credit records: what a department submits about a subject, and how the department corrects it.

A record is never deleted or rewritten: a correction is a new event that names the version it
supersedes and the reason.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event
from eventsourcing.utils import get_topic

from domain import clock
from domain.base import CHINA_TIME, DomainError, LedgerAggregate
from domain.identifiers import SubjectRef

ITEM_CODE = re.compile(r"^[A-Z][A-Z0-9.-]{1,31}$")
CORRECTABLE_FIELDS = ("decision_number", "decision_date", "summary", "details")


class RecordRuleBroken(DomainError):
    """A record command that the rules refuse."""


class NotRecordOwner(RecordRuleBroken):
    def __init__(self, actor: str, owner: str) -> None:
        super().__init__(f"only {owner!r}, which submitted the record, may correct it, not {actor!r}")


class InvalidRecord(RecordRuleBroken):
    pass


def record_id(*, department: str, item_code: str, decision_number: str, subject_key: str) -> UUID:
    """One record per department decision, item and subject: a second submission is refused."""
    return uuid5(
        NAMESPACE_URL,
        f"credit-ledger:record:{department}:{item_code}:{decision_number}:{subject_key}",
    )


def today_in_china() -> date:
    return clock.now().astimezone(CHINA_TIME).date()


class CreditRecord(LedgerAggregate):
    """A credit record about one subject, owned by the department that submitted it."""

    @staticmethod
    def create_id(
        *, actor: str, subject: str, item_code: str, decision_number: str, **_: Any
    ) -> UUID:
        return record_id(
            department=actor, item_code=item_code, decision_number=decision_number,
            subject_key=subject,
        )

    @event("Submitted")
    def __init__(
        self,
        *,
        actor: str,
        subject: str,
        item_code: str,
        decision_number: str,
        decision_date: date,
        summary: str,
        details: dict[str, Any],
    ) -> None:
        self.department = actor
        self.subject = subject
        self.item_code = item_code
        self.decision_number = decision_number
        self.decision_date = decision_date
        self.summary = summary
        self.details = details
        self.corrections = 0

    @classmethod
    def submit(
        cls,
        *,
        actor: str,
        subject: SubjectRef,
        item_code: str,
        decision_number: str,
        decision_date: date,
        summary: str,
        details: dict[str, Any] | None = None,
    ) -> CreditRecord:
        """A department submits a record from one of its decisions."""
        return cls(**submission_fields(actor, subject, item_code, decision_number, decision_date,
                                       summary, details))

    @classmethod
    def submission(
        cls,
        *,
        actor: str,
        subject: SubjectRef,
        item_code: str,
        decision_number: str,
        decision_date: date,
        summary: str,
        details: dict[str, Any] | None = None,
    ) -> LedgerAggregate.Event:
        """The Submitted event of a new record, by the same rules as ``submit``, without building
        the aggregate: bulk imports store thousands per transaction, and the event is all that is
        stored (a test keeps the two paths identical)."""
        fields = submission_fields(actor, subject, item_code, decision_number, decision_date,
                                   summary, details)
        submitted: type[LedgerAggregate.Event] = getattr(cls, "Submitted")  # noqa: B009
        return submitted(  # type: ignore[call-arg]
            originator_id=cls.create_id(**fields),
            originator_version=cls.INITIAL_VERSION,
            timestamp=submitted.create_timestamp(),
            originator_topic=_RECORD_TOPIC,
            **fields,
        )

    @property
    def subject_key(self) -> str:
        return self.subject

    def correct(self, *, actor: str, reason: str, changes: dict[str, Any]) -> None:
        """The owning department corrects fields of the record, giving its reason."""
        if actor != self.department:
            raise NotRecordOwner(actor, self.department)
        check_text("reason", reason)
        if not changes:
            raise InvalidRecord("a correction must change at least one field")
        unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
        if unknown:
            raise InvalidRecord(
                f"cannot correct {', '.join(unknown)}; correctable: {', '.join(CORRECTABLE_FIELDS)}"
            )
        if "decision_date" in changes:
            check_decision_date(changes["decision_date"])
        for name in ("decision_number", "summary"):
            if name in changes:
                check_text(name.replace("_", " "), changes[name])
        self._corrected(actor=actor, reason=reason.strip(), changes=dict(changes),
                        supersedes=self.version)

    @event("Corrected")
    def _corrected(
        self, *, actor: str, reason: str, changes: dict[str, Any], supersedes: int
    ) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.corrections += 1


def submission_fields(actor: str, subject: SubjectRef, item_code: str, decision_number: str,
                      decision_date: date, summary: str,
                      details: dict[str, Any] | None) -> dict[str, Any]:
    """The checked attributes of a Submitted event."""
    check_item_code(item_code)
    check_text("decision number", decision_number)
    check_text("summary", summary)
    check_decision_date(decision_date)
    return {
        "actor": actor, "subject": subject.key, "item_code": item_code,
        "decision_number": decision_number.strip(), "decision_date": decision_date,
        "summary": summary.strip(), "details": dict(details or {}),
    }


_RECORD_TOPIC = get_topic(CreditRecord)


def check_item_code(item_code: str) -> None:
    if not ITEM_CODE.match(item_code):
        raise InvalidRecord(f"{item_code!r} is not a catalogue item code")


def check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecord(f"the {name} must not be empty")


def check_decision_date(value: object) -> None:
    if not isinstance(value, date):
        raise InvalidRecord(f"the decision date must be a date, not {value!r}")
    if value > today_in_china():
        raise InvalidRecord(f"the decision date {value.isoformat()} is in the future")
