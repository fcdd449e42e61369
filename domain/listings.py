"""Red and black lists (红黑名单).

The black list is the serious-dishonesty list (严重失信主体名单): a listing rests on a legal basis and
on serious negative records of the subject, the subject is notified first and may state its case,
and the decision names the start, the planned end and the conditions of removal (移出). The red list
names trustworthy subjects for joint incentives. A listing ends at its planned end (computed when
the state is read: no event is needed, so replay stays deterministic), or earlier by removal.
Each list's published measures (联合奖惩措施) apply while the listing is active.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import DomainError, LedgerAggregate, check_not_before, check_not_future
from domain.events import apply_schemas

LISTS = ("black", "red")


class ListingRuleBroken(DomainError):
    pass


def listing_id(number: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"credit-ledger:listing:{number}")


class Listing(LedgerAggregate):
    """One subject's place on one list, from the listing decision to removal or expiry."""

    @staticmethod
    def create_id(*, number: str, **_: Any) -> UUID:
        return listing_id(number)

    @event("Listed")
    def __init__(self, *, actor: str, list_name: str, subject: str, number: str,
                 legal_basis: str, basis_records: list[str], notified_on: date | None,
                 start: date, planned_end: date, removal_conditions: str,
                 measures_version: str) -> None:
        self.list_name = list_name
        self.subject = subject
        self.number = number
        self.authority = actor
        self.start = start
        self.planned_end = planned_end
        self.removed_on: date | None = None

    @classmethod
    def list_subject(cls, *, actor: str, list_name: str, subject: str, number: str,
                     legal_basis: str, basis_records: list[str], notified_on: date | None,
                     start: date, planned_end: date, removal_conditions: str,
                     measures_version: str) -> Listing:
        """Put a subject on a list. The caller has checked the basis records (``check_basis``)."""
        if list_name not in LISTS:
            raise ListingRuleBroken(f"there is a black list and a red list, not {list_name!r}")
        if not number.strip():
            raise ListingRuleBroken("a listing decision has a number")
        if not legal_basis.strip():
            raise ListingRuleBroken("a listing must rest on a legal basis")
        if planned_end <= start:
            raise ListingRuleBroken("a listing's planned end comes after its start")
        check_not_future("the listing's start", start)
        if notified_on is not None:
            check_not_future("the notice date", notified_on)
        if list_name == "black":
            if not basis_records:
                raise ListingRuleBroken("a black listing names the records it rests on")
            if notified_on is None or notified_on >= start:
                raise ListingRuleBroken(
                    "the subject is notified before a black listing starts, to state its case"
                )
            if not removal_conditions.strip():
                raise ListingRuleBroken("a black listing states the conditions of its removal")
        return cls(actor=actor, list_name=list_name, subject=subject, number=number.strip(),
                   legal_basis=legal_basis.strip(), basis_records=list(basis_records),
                   notified_on=notified_on, start=start, planned_end=planned_end,
                   removal_conditions=removal_conditions.strip(),
                   measures_version=measures_version)

    @property
    def subject_key(self) -> str:
        return self.subject

    def remove(self, *, actor: str, reason: str, removed_on: date,
               objection: str | None = None) -> None:
        """Remove (移出) the subject from the list before the planned end."""
        if self.removed_on is not None:
            raise ListingRuleBroken(f"listing {self.number} was already removed")
        check_not_future("the removal date", removed_on)
        check_not_before("the removal date", removed_on, "the listing's start", self.start)
        if removed_on >= self.planned_end:
            raise ListingRuleBroken(
                f"listing {self.number} ends on {self.planned_end.isoformat()} by itself"
            )
        if not reason.strip():
            raise ListingRuleBroken("a removal gives its reason")
        self._removed(actor=actor, reason=reason.strip(), removed_on=removed_on,
                      objection=objection)

    @event("Removed")
    def _removed(self, *, actor: str, reason: str, removed_on: date,
                 objection: str | None) -> None:
        self.removed_on = removed_on


def check_basis(list_name: str, basis: list[dict[str, Any]]) -> None:
    """The records a listing rests on must be in force about the subject; for the black list,
    serious negative information. ``basis`` holds the records' state on the start date."""
    for record in basis:
        if not record.get("in_force"):
            raise ListingRuleBroken(f"record {record['id']} is not in force on the start date")
        if list_name == "black" and not (record.get("polarity") == "negative"
                                         and record.get("severity") == "serious"):
            raise ListingRuleBroken(
                f"record {record['id']} is not serious negative information: it cannot ground "
                "a black listing"
            )


apply_schemas(Listing)
