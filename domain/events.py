"""Each event's schema, in one place: its fields, its class version and its upcasters.

The aggregates (``domain/*.py``) take their events' class versions and upcasters from here, and a
test holds every aggregate event's fields to the schema; the ledger's mapper and the reducer's
facts (``proofs.facts``) both bring a stored event up to date through ``upcast``. So an old event
version means the same thing to the aggregates, to ``credit history`` and to a court's verifier.

Standard library only: the offline verifier carries it.

To change an event: add the field to its schema and to the aggregate's method, raise
``version``, and append an upcaster that gives old events the field's meaning before it existed.
Never edit an upcaster that has shipped: stored events depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

Upcaster = Callable[[dict[str, Any]], None]
# Where a stored payload keeps the class version it was written with (absent: version 1).
CLASS_VERSION = "class_version"


@dataclass(frozen=True)
class EventSchema:
    kind: str  # "CreditRecord.Corrected": the aggregate's class and the event's name
    fields: tuple[str, ...]  # besides the originator id, version and timestamp
    upcasters: tuple[Upcaster, ...] = ()  # upcasters[i] takes version i + 1 to i + 2
    # The field holding the day the act takes effect in the world (valid time); None: the
    # event is no act of its own (registrations), or older versions lack the field and the
    # day it was recorded stands in for it.
    effective: str | None = None

    @property
    def version(self) -> int:
        return len(self.upcasters) + 1

    def upcast(self, state: dict[str, Any]) -> dict[str, Any]:
        """Bring a stored event's state (as decoded) to this version, in place; return it."""
        written = state.pop(CLASS_VERSION, 1)
        if not isinstance(written, int) or not 1 <= written <= self.version:
            raise ValueError(f"{self.kind}: stored class version {written!r} is not one of "
                             f"1..{self.version}")
        for upcaster in self.upcasters[written - 1:]:
            upcaster(state)
        return state


def _corrected_v1_v2(state: dict[str, Any]) -> None:
    # Version 2 added the objection a correction carries out; before, none did.
    state["objection"] = None


def _dated(field: str) -> Upcaster:
    """An upcaster for the version that added the act's own date: events written before it
    took effect the day they were recorded, which ``None`` says (readers fall back to it)."""
    def upcast(state: dict[str, Any]) -> None:
        state[field] = None
    upcast.__name__ = f"no_{field}"
    return upcast


_CORRECTED_ON = _dated("corrected_on")
_REVOKED_ON = _dated("revoked_on")
_ENDED_ON = _dated("ended_on")
_REPAIRED_ON = _dated("repaired_on")
_DECLINED_ON = _dated("declined_on")
_EXTENDED_ON = _dated("extended_on")


_SCHEMAS = (
    EventSchema("Authority.Registered", ("actor", "code", "kind", "name_zh", "name_en", "kid",
                                         "public_key", "valid_from", "expires_at")),
    EventSchema("Authority.KeyRotated", ("actor", "kid", "public_key", "valid_from",
                                         "expires_at", "retires")),
    EventSchema("Authority.KeyRevoked", ("actor", "kid", "revoked_at", "reason")),
    EventSchema("PolicyVersion.Published", ("actor", "kind", "version", "effective_from",
                                            "document")),
    EventSchema("Subject.Registered", ("actor", "subject", "kind", "name")),
    EventSchema("Subject.Renamed", ("actor", "name", "reason")),
    EventSchema("CreditRecord.Submitted", ("actor", "subject", "item_code", "decision_number",
                                           "decision_date", "summary", "details"),
                effective="decision_date"),
    EventSchema("CreditRecord.Corrected", ("actor", "reason", "changes", "supersedes",
                                           "objection", "corrected_on"),
                (_corrected_v1_v2, _CORRECTED_ON), effective="corrected_on"),
    EventSchema("CreditRecord.Revoked", ("actor", "reason", "objection", "revoked_on"),
                (_REVOKED_ON,), effective="revoked_on"),
    EventSchema("CreditRecord.DisclosureEnded", ("actor", "reason", "objection", "ended_on"),
                (_ENDED_ON,), effective="ended_on"),
    EventSchema("CreditRecord.Repaired", ("actor", "application", "repaired_on"),
                (_REPAIRED_ON,), effective="repaired_on"),
    EventSchema("Objection.Raised", ("actor", "subject", "number", "target_kind", "target_id",
                                     "grounds", "raised_by", "agent", "raised_on"),
                effective="raised_on"),
    EventSchema("Objection.Accepted", ("actor", "accepted_on", "deadline", "provisional"),
                effective="accepted_on"),
    EventSchema("Objection.Declined", ("actor", "reason", "declined_on"), (_DECLINED_ON,),
                effective="declined_on"),
    EventSchema("Objection.Extended", ("actor", "reason", "deadline", "provisional",
                                       "extended_on"), (_EXTENDED_ON,), effective="extended_on"),
    EventSchema("Objection.Ruled", ("actor", "outcome", "reasoning", "changes", "ruled_on",
                                    "late"), effective="ruled_on"),
    EventSchema("Objection.ReviewRequested", ("actor", "grounds", "requested_on"),
                effective="requested_on"),
    EventSchema("Objection.ReviewRuled", ("actor", "result", "outcome", "changes", "reasoning",
                                          "ruled_on"), effective="ruled_on"),
    EventSchema("RepairApplication.Applied", ("actor", "subject", "number", "record_id",
                                              "evidence", "commitment", "applied_on"),
                effective="applied_on"),
    EventSchema("RepairApplication.Decided", ("actor", "approved", "decided_on", "checks",
                                              "reason"), effective="decided_on"),
    EventSchema("Listing.Listed", ("actor", "list_name", "subject", "number", "legal_basis",
                                   "basis_records", "notified_on", "start", "planned_end",
                                   "removal_conditions", "measures_version"),
                effective="start"),
    EventSchema("Listing.Removed", ("actor", "reason", "removed_on", "objection"),
                effective="removed_on"),
    EventSchema("Commitment.Made", ("actor", "subject", "number", "text", "context", "made_on",
                                    "due_on"), effective="made_on"),
    EventSchema("Commitment.Settled", ("actor", "kept", "note", "settled_on"),
                effective="settled_on"),
    EventSchema("Query.Logged", ("actor", "reader", "role", "command", "about", "purpose",
                                 "returned")),
    EventSchema("AccessToken.Issued", ("actor", "principal", "role", "digest", "note")),
    EventSchema("AccessToken.Revoked", ("actor", "reason")),
    EventSchema("CreditCheck.Made", ("actor", "checker", "role", "about", "matter",
                                     "case_number", "answer")),
)
SCHEMAS: Mapping[str, EventSchema] = {s.kind: s for s in _SCHEMAS}


def schema(kind: str) -> EventSchema:
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"no event {kind!r} is defined") from None


def upcast(kind: str, state: dict[str, Any]) -> dict[str, Any]:
    """A stored event's state brought to its current version (events without a schema, such as
    an aggregate's bare creation, are returned as they are)."""
    found = SCHEMAS.get(kind)
    if found is None:
        state.pop(CLASS_VERSION, None)
        return state
    return found.upcast(state)


def effective_day(kind: str, data: Mapping[str, Any]) -> date | None:
    """The day an event's act takes effect in the world, when its schema names one and the
    event carries it."""
    found = SCHEMAS.get(kind)
    value = data.get(found.effective) if found is not None and found.effective else None
    return value if isinstance(value, date) else None


def apply_schemas(aggregate: type) -> None:
    """Give an aggregate's event classes (explicit, or made by ``@event`` methods) their class
    versions and upcasters from the schemas (``upcast_vN_vN+1``, as eventsourcing names them).
    Called once at the end of each aggregate's module."""
    for name, cls in list(vars(aggregate).items()):
        found = SCHEMAS.get(f"{aggregate.__name__}.{name}")
        if found is None or not isinstance(cls, type):
            continue
        cls.class_version = found.version  # type: ignore[attr-defined]
        for number, upcaster in enumerate(found.upcasters, start=1):
            setattr(cls, f"upcast_v{number}_v{number + 1}", staticmethod(upcaster))
