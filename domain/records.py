"""Credit records: submitted by the department that owns the catalogue item, corrected, revoked,
their public display ended, repaired.

A record is never deleted or rewritten. A correction is a new event naming the version it
supersedes; revocation, the end of disclosure and repair are facts added on top. The credit office
may correct, complete, revoke or end the disclosure of any record, but only as the outcome of an
objection ruling, which the event names.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event
from eventsourcing.utils import get_topic

from domain import clock, validation
from domain.base import DomainError, LedgerAggregate, check_not_before, check_not_future
from domain.events import apply_schemas
from domain.identifiers import SubjectRef
from domain.policies import Catalogue

ITEM_CODE = re.compile(r"^[A-Z][A-Z0-9.-]{1,31}$")
CORRECTABLE_FIELDS = ("decision_number", "decision_date", "summary", "details")


class RecordRuleBroken(DomainError):
    """A record command that the rules refuse."""


class NotRecordOwner(RecordRuleBroken):
    def __init__(self, actor: str, owner: str) -> None:
        super().__init__(
            f"only {owner!r}, which submitted the record, may change it, not {actor!r}"
        )


class InvalidRecord(RecordRuleBroken):
    pass


class ItemNotInCatalogue(RecordRuleBroken):
    def __init__(self, item_code: str, catalogue: Catalogue) -> None:
        super().__init__(
            f"item {item_code} is not in catalogue {catalogue.version} "
            f"(in force from {catalogue.effective_from.isoformat()})"
        )


class NotItemOwner(RecordRuleBroken):
    def __init__(self, item_code: str, owner: str, actor: str) -> None:
        super().__init__(f"item {item_code} is submitted by {owner!r}, not by {actor!r}")


class RecordRevoked(RecordRuleBroken):
    def __init__(self) -> None:
        super().__init__("the record is revoked; nothing more can be recorded on it")


def record_id(*, department: str, item_code: str, decision_number: str, subject_key: str) -> UUID:
    """One record per department decision, item and subject: a second submission is refused."""
    return uuid5(
        NAMESPACE_URL,
        f"credit-ledger:record:{department}:{item_code}:{decision_number}:{subject_key}",
    )


today_in_china = clock.today_in_china


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
        self.revoked = False
        self.disclosure_ended = False
        self.repaired = False

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
        catalogue: Catalogue,
        details: dict[str, Any] | None = None,
    ) -> CreditRecord:
        """A department submits a record from one of its decisions.

        ``catalogue`` is the catalogue in force on the decision date: the item must be in it and
        belong to the submitting department.
        """
        return cls(**submission_fields(actor, subject, item_code, decision_number, decision_date,
                                       summary, details, catalogue))

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
        catalogue: Catalogue,
        details: dict[str, Any] | None = None,
    ) -> LedgerAggregate.Event:
        """The Submitted event of a new record, by the same rules as ``submit``, without building
        the aggregate: bulk imports store thousands per transaction, and the event is all that is
        stored (a test keeps the two paths identical)."""
        fields = submission_fields(actor, subject, item_code, decision_number, decision_date,
                                   summary, details, catalogue)
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

    # -- corrections ------------------------------------------------------------------------

    class Corrected(LedgerAggregate.Event):
        """Fields corrected, naming the version superseded (and the objection ruling, if any),
        on the day the correction was decided. Versions: ``domain/events.py``."""

        actor: str
        reason: str
        changes: dict[str, Any]
        supersedes: int
        objection: str | None
        corrected_on: date | None

    def correct(self, *, actor: str, reason: str, changes: dict[str, Any],
                objection: str | None = None, corrected_on: date | None = None) -> None:
        """Correct (or complete) fields of the record, giving the reason.

        The owning department corrects its own records; anyone else only as the outcome of the
        objection ``objection``. A correction says what the record always should have said: it
        applies to every day once known; ``corrected_on`` dates the act.
        """
        self.check_may_change(actor, objection)
        check_text("reason", reason)
        check_changes(changes)
        day = self._act_day("the correction date", corrected_on)
        self._corrected(actor=actor, reason=reason.strip(), changes=dict(changes),
                        supersedes=self.version, objection=objection, corrected_on=day)

    def _act_day(self, what: str, day: date | None) -> date:
        """The day of an act on the record: given or today; never after today nor before the
        decision it acts on."""
        day = day or today_in_china()
        check_not_future(what, day)
        check_not_before(what, day, "the decision date", self.decision_date)
        return day

    @event(Corrected)
    def _corrected(self, *, actor: str, reason: str, changes: dict[str, Any], supersedes: int,
                   objection: str | None, corrected_on: date | None) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        self.corrections += 1

    # -- revocation, end of disclosure, repair ------------------------------------------------

    def revoke(self, *, actor: str, reason: str, objection: str | None = None,
               revoked_on: date | None = None) -> None:
        """Revoke the record (a factual error): it stays in the ledger, void from the start once
        known (a revoked decision never stood); ``revoked_on`` dates the act."""
        self.check_may_change(actor, objection)
        check_text("reason", reason)
        day = self._act_day("the revocation date", revoked_on)
        self._revoked(actor=actor, reason=reason.strip(), objection=objection, revoked_on=day)

    @event("Revoked")
    def _revoked(self, *, actor: str, reason: str, objection: str | None,
                 revoked_on: date | None) -> None:
        self.revoked = True

    def end_disclosure(self, *, actor: str, reason: str, objection: str | None = None,
                       ended_on: date | None = None) -> None:
        """End public display early (an objection found the disclosure period over), from
        ``ended_on`` (the ruling's date)."""
        self.check_may_change(actor, objection)
        check_text("reason", reason)
        if self.disclosure_ended:
            raise InvalidRecord("the record's disclosure has already ended")
        day = self._act_day("the end of disclosure", ended_on)
        self._disclosure_ended(actor=actor, reason=reason.strip(), objection=objection,
                               ended_on=day)

    @event("DisclosureEnded")
    def _disclosure_ended(self, *, actor: str, reason: str, objection: str | None,
                          ended_on: date | None) -> None:
        self.disclosure_ended = True

    def mark_repaired(self, *, actor: str, application: str,
                      repaired_on: date | None = None) -> None:
        """An approved credit repair: public display and sharing end from ``repaired_on`` (the
        decision's date); the record stays."""
        if self.revoked:
            raise RecordRevoked()
        if self.repaired:
            raise InvalidRecord("the record is already repaired")
        day = self._act_day("the repair date", repaired_on)
        self._repaired(actor=actor, application=application, repaired_on=day)

    @event("Repaired")
    def _repaired(self, *, actor: str, application: str, repaired_on: date | None) -> None:
        self.repaired = True

    def check_may_change(self, actor: str, objection: str | None) -> None:
        if self.revoked:
            raise RecordRevoked()
        if objection is None and actor != self.department:
            raise NotRecordOwner(actor, self.department)


def submission_fields(actor: str, subject: SubjectRef, item_code: str, decision_number: str,
                      decision_date: date, summary: str, details: dict[str, Any] | None,
                      catalogue: Catalogue) -> dict[str, Any]:
    """The checked attributes of a Submitted event."""
    check_item_code(item_code)
    item = catalogue.item(item_code)
    if item is None:
        raise ItemNotInCatalogue(item_code, catalogue)
    if item.department != actor:
        raise NotItemOwner(item_code, item.department, actor)
    check_text("decision number", decision_number)
    check_text("summary", summary)
    check_decision_date(decision_date)
    if details is not None and not isinstance(details, dict):
        raise InvalidRecord("details must be an object")
    validation.check_value("details", details or {})
    return {
        "actor": actor, "subject": subject.key, "item_code": item_code,
        "decision_number": decision_number.strip(), "decision_date": decision_date,
        "summary": summary.strip(), "details": dict(details or {}),
    }


_RECORD_TOPIC = get_topic(CreditRecord)


def check_changes(changes: dict[str, Any]) -> None:
    """What a correction may change, and the values it may give."""
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
    if "details" in changes and not isinstance(changes["details"], dict):
        raise InvalidRecord("details must be an object")
    validation.check_value("changes", {k: v for k, v in changes.items() if k != "decision_date"})


def check_item_code(item_code: str) -> None:
    if not isinstance(item_code, str) or not ITEM_CODE.match(item_code):
        raise InvalidRecord(f"{item_code!r} is not a catalogue item code")


def check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecord(f"the {name} must not be empty")
    validation.check_text(f"the {name}", value, allow_newlines=name in ("summary", "reason"))


def check_decision_date(value: object) -> None:
    if not isinstance(value, date):
        raise InvalidRecord(f"the decision date must be a date, not {value!r}")
    # a department records a decision it has made: never one dated after the day it submits
    check_not_future("the decision date", value)


apply_schemas(CreditRecord)
