"""A subject's state at a date: the pure, versioned reducer from its signed events.

``subject_state(facts, policy_facts, as_of, known_at)`` replays the subject's events as the ledger
knew them at ``known_at`` (transaction time) and shows the world they describe on the day
``as_of`` (valid time):
- a record is in effect from its decision date; corrections and revocations are retroactive (they
  fix what the record always should have said) once known;
- an objection marks its target from acceptance until the ruling; a repair, a ruling that ends
  disclosure, a listing and its removal take effect on their own dates;
- disclosure periods come from the catalogue in force on the decision date, display of minor
  information from the catalogue in force on ``as_of``, and the grade from the grading policy in
  force on ``as_of`` (all as published by ``known_at``);
- a listing ends at its planned end, computed here (no event), so replay stays deterministic.

Standard library only: a court's offline verifier recomputes this and compares. The output names
``REDUCER_VERSION``; any change to what it computes changes that version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from domain.clock import CHINA_TIME
from domain.grading import grade
from domain.periods import add_months, add_years
from domain.policies import Catalogue, Policy, PolicyBook, PolicyError, parse_policy

REDUCER_VERSION = "subject-state/2"
# Earlier versions whose results this one reproduces for every event they could read (events
# written since carry the dates that /2 applies; the verifier accepts an earlier label only
# when its own recomputation gives the very same state).
COMPATIBLE_REDUCERS = ("subject-state/1",)


class Fact(NamedTuple):
    """One stored event as the reducer sees it (a tuple: cheap to make by the hundred thousand)."""

    position: int
    aggregate_id: str
    version: int
    kind: str  # "CreditRecord.Submitted": the topic after the module
    actor: str
    recorded_at: datetime
    data: Mapping[str, Any]
    notification_id: int | None = None  # where the signed event is stored (for listings)
    kid: str | None = None  # the key that signed it

    @property
    def recorded_on(self) -> date:
        """The China calendar day the event was recorded."""
        return self.recorded_at.astimezone(CHINA_TIME).date()


# Topics are few and each is asked for once an event (a verify, a rebuild): kept once split.
@lru_cache(maxsize=1024)
def kind_of(topic: str) -> str:
    return topic.rsplit(":", 1)[-1]


@lru_cache(maxsize=1024)
def stream_of(topic: str) -> str:
    """The aggregate class a topic names (``CreditRecord`` of
    ``domain.records:CreditRecord.Submitted``): the event's stream in the log."""
    return kind_of(topic).rsplit(".", 1)[0]


def end_of_day(day: date) -> datetime:
    """The last instant of a China calendar day, in UTC (the default ``known_at`` for a date)."""
    return (datetime(day.year, day.month, day.day, tzinfo=CHINA_TIME) + timedelta(days=1)
            - timedelta(microseconds=1)).astimezone(UTC)


def policy_book(policy_facts: Iterable[Fact], known_at: datetime) -> PolicyBook:
    """The policies published by ``known_at``, in publication order (only read once made: a
    rebuild asks for the same book once per subject, so the book of the same stored events is
    made once)."""
    published = sorted((f for f in policy_facts
                        if f.kind == "PolicyVersion.Published" and f.recorded_at <= known_at),
                       key=lambda f: f.position)
    key = tuple((f.aggregate_id, f.version, f.position) for f in published)
    book = _BOOKS.get(key)
    if book is None:
        book = PolicyBook()
        for fact in published:
            policy = _parsed(fact)
            if policy is not None:
                book.add(policy)
        if len(_BOOKS) >= 64:
            _BOOKS.clear()
        _BOOKS[key] = book
    return book


_BOOKS: dict[tuple[tuple[str, int, int], ...], PolicyBook] = {}


_PARSED: dict[tuple[str, int, int], Policy | None] = {}


def _parsed(fact: Fact) -> Policy | None:
    """Parsed once per stored policy event (events never change)."""
    key = (fact.aggregate_id, fact.version, fact.position)
    if key not in _PARSED:
        try:
            _PARSED[key] = parse_policy(fact.data["document"])
        except (PolicyError, KeyError):
            _PARSED[key] = None  # a document the ledger refused could not have been stored
    return _PARSED[key]


# -- working views, one per aggregate ----------------------------------------------------------


@dataclass(slots=True)
class _Record:
    id: str
    department: str
    item_code: str
    decision_number: str
    decision_date: date
    summary: str
    details: dict[str, Any]
    submitted_position: int
    corrections: list[dict[str, Any]] = field(default_factory=list)
    revoked: dict[str, Any] | None = None
    disclosure_ended_on: date | None = None
    repaired_on: date | None = None


@dataclass(slots=True)
class _Objection:
    id: str
    subject: str
    number: str
    target_kind: str
    target_id: str
    raised_on: date
    raised_by: str
    accepted_on: date | None = None
    deadlines: list[tuple[date, date, bool]] = field(default_factory=list)  # (from, due, provisional)
    extended_on: date | None = None
    declined_on: date | None = None
    outcome: str | None = None
    ruled_on: date | None = None
    late: bool = False
    review: str | None = None
    review_on: date | None = None


@dataclass(slots=True)
class _Repair:
    id: str
    number: str
    record_id: str
    applied_on: date
    decision: str | None = None
    decided_on: date | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Listing:
    id: str
    number: str
    list_name: str
    authority: str
    legal_basis: str
    basis_records: list[str]
    start: date
    planned_end: date
    measures_version: str
    decided_on: date
    removed_on: date | None = None
    removal_reason: str | None = None


@dataclass(slots=True)
class _Commitment:
    id: str
    number: str
    text: str
    context: str
    made_on: date
    due_on: date | None
    outcome: str | None = None
    settled_on: date | None = None


@dataclass
class _Replay:
    subject: str
    kind: str | None = None
    names: list[tuple[date, str]] = field(default_factory=list)
    records: dict[str, _Record] = field(default_factory=dict)
    objections: dict[str, _Objection] = field(default_factory=dict)
    repairs: dict[str, _Repair] = field(default_factory=dict)
    listings: dict[str, _Listing] = field(default_factory=dict)
    commitments: dict[str, _Commitment] = field(default_factory=dict)

    def apply(self, f: Fact) -> None:
        handler = _HANDLERS.get(f.kind)
        if handler is not None:
            handler(self, f)


def _subject_registered(r: _Replay, f: Fact) -> None:
    r.kind = str(f.data["kind"])
    r.names.append((f.recorded_on, str(f.data["name"])))


def _subject_renamed(r: _Replay, f: Fact) -> None:
    r.names.append((f.recorded_on, str(f.data["name"])))


def _record_submitted(r: _Replay, f: Fact) -> None:
    d = f.data
    r.records[f.aggregate_id] = _Record(
        f.aggregate_id, f.actor, d["item_code"], d["decision_number"], d["decision_date"],
        d["summary"], dict(d["details"] or {}), f.position)


def _act_day(f: Fact, name: str) -> date:
    """The day an act takes effect: its own date, or for events written before they carried
    one, the day it was recorded (what those events always meant)."""
    value = f.data[name]
    return value if isinstance(value, date) else f.recorded_on


def _record_corrected(r: _Replay, f: Fact) -> None:
    # A correction says what the record always should have said: retroactive once known.
    record = r.records.get(f.aggregate_id)
    if record is None:
        return
    changes = dict(f.data["changes"] or {})
    for name, value in changes.items():
        if name in ("decision_number", "decision_date", "summary", "details"):
            setattr(record, name, value)
    record.corrections.append({"on": _act_day(f, "corrected_on"), "reason": f.data["reason"],
                               "fields": sorted(changes), "objection": f.data["objection"]})


def _record_revoked(r: _Replay, f: Fact) -> None:
    # A revoked decision never stood: retroactive once known.
    if f.aggregate_id in r.records:
        r.records[f.aggregate_id].revoked = {"on": _act_day(f, "revoked_on"),
                                             "reason": f.data["reason"],
                                             "objection": f.data["objection"]}


def _record_disclosure_ended(r: _Replay, f: Fact) -> None:
    if f.aggregate_id in r.records:
        r.records[f.aggregate_id].disclosure_ended_on = _act_day(f, "ended_on")


def _record_repaired(r: _Replay, f: Fact) -> None:
    if f.aggregate_id in r.records:
        r.records[f.aggregate_id].repaired_on = _act_day(f, "repaired_on")


def _objection_raised(r: _Replay, f: Fact) -> None:
    d = f.data
    r.objections[f.aggregate_id] = _Objection(
        f.aggregate_id, d["subject"], d["number"], d["target_kind"], d["target_id"],
        d["raised_on"], d["raised_by"])


def _objection_event(r: _Replay, f: Fact) -> None:
    o = r.objections.get(f.aggregate_id)
    if o is None:
        return
    d = f.data
    step = f.kind.split(".", 1)[1]
    if step == "Accepted":
        o.accepted_on = d["accepted_on"]
        o.deadlines.append((d["accepted_on"], d["deadline"], d["provisional"]))
    elif step == "Extended":
        # the new deadline holds from the day the extension was granted, not before
        o.extended_on = _act_day(f, "extended_on")
        o.deadlines.append((o.extended_on, d["deadline"], d["provisional"]))
    elif step == "Declined":
        o.declined_on = _act_day(f, "declined_on")
    elif step == "Ruled":
        o.outcome, o.ruled_on, o.late = d["outcome"], d["ruled_on"], d["late"]
    elif step == "ReviewRequested":
        o.review, o.review_on = "requested", d["requested_on"]
    elif step == "ReviewRuled":
        o.review, o.review_on = d["result"], d["ruled_on"]
        if d["outcome"]:
            o.outcome = d["outcome"]


def _repair_applied(r: _Replay, f: Fact) -> None:
    d = f.data
    r.repairs[f.aggregate_id] = _Repair(f.aggregate_id, d["number"], d["record_id"],
                                        d["applied_on"])


def _repair_decided(r: _Replay, f: Fact) -> None:
    repair = r.repairs.get(f.aggregate_id)
    if repair is not None:
        repair.decision = "approved" if f.data["approved"] else "refused"
        repair.decided_on = f.data["decided_on"]
        repair.checks = list(f.data["checks"] or [])


def _listed(r: _Replay, f: Fact) -> None:
    d = f.data
    r.listings[f.aggregate_id] = _Listing(
        f.aggregate_id, d["number"], d["list_name"], f.actor, d["legal_basis"],
        list(d["basis_records"]), d["start"], d["planned_end"], d["measures_version"],
        min(f.recorded_on, d["start"]))


def _listing_removed(r: _Replay, f: Fact) -> None:
    listing = r.listings.get(f.aggregate_id)
    if listing is not None:
        listing.removed_on = f.data["removed_on"]
        listing.removal_reason = f.data["reason"]


def _commitment_made(r: _Replay, f: Fact) -> None:
    d = f.data
    r.commitments[f.aggregate_id] = _Commitment(f.aggregate_id, d["number"], d["text"],
                                                d["context"], d["made_on"],
                                                d["due_on"])


def _commitment_settled(r: _Replay, f: Fact) -> None:
    c = r.commitments.get(f.aggregate_id)
    if c is not None:
        c.outcome = "kept" if f.data["kept"] else "broken"
        c.settled_on = f.data["settled_on"]


_HANDLERS = {
    "Subject.Registered": _subject_registered,
    "Subject.Renamed": _subject_renamed,
    "CreditRecord.Submitted": _record_submitted,
    "CreditRecord.Corrected": _record_corrected,
    "CreditRecord.Revoked": _record_revoked,
    "CreditRecord.DisclosureEnded": _record_disclosure_ended,
    "CreditRecord.Repaired": _record_repaired,
    "Objection.Raised": _objection_raised,
    **{f"Objection.{s}": _objection_event for s in (
        "Accepted", "Extended", "Declined", "Ruled", "ReviewRequested", "ReviewRuled")},
    "RepairApplication.Applied": _repair_applied,
    "RepairApplication.Decided": _repair_decided,
    "Listing.Listed": _listed,
    "Listing.Removed": _listing_removed,
    "Commitment.Made": _commitment_made,
    "Commitment.Settled": _commitment_settled,
}


# -- the state on a day ------------------------------------------------------------------------


def _iso(value: date | None) -> str | None:
    # A view writes each of its days as text, a few for every record: the text of a day is
    # kept once made (date.isoformat formats through printf; a lookup costs a fifth of that).
    if value is None:
        return None
    text = _ISO_DAYS.get(value)
    if text is None:
        if len(_ISO_DAYS) >= 100_000:
            _ISO_DAYS.clear()
        text = _ISO_DAYS[value] = value.isoformat()
    return text


_ISO_DAYS: dict[date, str] = {}


def _listing_view(listing: _Listing, as_of: date, book: PolicyBook) -> dict[str, Any]:
    # On a day before the removal, the listing still ran to its planned end as far as that day
    # showed: a removal takes effect on its own date.
    removed = listing.removed_on if listing.removed_on and listing.removed_on <= as_of else None
    end = min(listing.planned_end, removed) if removed else listing.planned_end
    if as_of < listing.start:
        status = "pending"
    elif as_of < end:
        status = "active"
    else:
        status = "removed" if removed is not None and removed < listing.planned_end else "expired"
    measures: list[dict[str, str]] = []
    policy = book.in_force("measures", listing.start)
    if policy is not None and policy.kind == "measures":
        lst = policy.lists.get(listing.list_name)  # type: ignore[union-attr]
        if lst is not None:
            measures = [{"code": m.code, "zh": m.zh, "en": m.en} for m in lst.measures]
    return {
        "id": listing.id, "number": listing.number, "list": listing.list_name,
        "authority": listing.authority, "legal_basis": listing.legal_basis,
        "basis_records": list(listing.basis_records), "start": _iso(listing.start),
        "planned_end": _iso(listing.planned_end), "removed_on": _iso(removed),
        "ends_on": _iso(end), "status": status, "measures_version": listing.measures_version,
        "measures": measures if status == "active" else [],
    }


def _objection_view(o: _Objection, as_of: date) -> dict[str, Any]:
    if o.declined_on is not None and o.declined_on <= as_of:
        status = "declined"
    elif o.ruled_on is not None and o.ruled_on <= as_of:
        status = "ruled"
    elif o.accepted_on is not None and o.accepted_on <= as_of:
        status = "accepted"
    else:
        status = "raised"
    review = o.review if o.review_on is not None and o.review_on <= as_of else None
    current = [d for d in o.deadlines if d[0] <= as_of]
    deadline, provisional = (current[-1][1], current[-1][2]) if current else (None, False)
    extended = o.extended_on is not None and o.extended_on <= as_of
    overdue = status == "accepted" and deadline is not None and as_of > deadline
    return {
        "id": o.id, "number": o.number, "target": o.target_kind, "target_id": o.target_id,
        "raised_by": o.raised_by, "raised_on": _iso(o.raised_on), "status": status,
        "accepted_on": _iso(o.accepted_on) if status != "raised" else None,
        "deadline": _iso(deadline) if status in ("accepted", "ruled") else None,
        "deadline_provisional": provisional, "extended": extended,
        "outcome": o.outcome if status == "ruled" else None,
        "ruled_on": _iso(o.ruled_on) if status == "ruled" else None,
        "late": o.late if status == "ruled" else False, "overdue": overdue, "review": review,
    }


def _markings(objections: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Target id -> numbers of the objections marking it (accepted, not yet ruled)."""
    marks: dict[str, list[str]] = {}
    for o in objections:
        if o["status"] == "accepted":
            marks.setdefault(o["target_id"], []).append(o["number"])
    return {target: sorted(numbers) for target, numbers in marks.items()}


class _Catalogues:
    """The catalogue in force on each day, looked up once per day (a subject's records share
    few decision dates' versions)."""

    def __init__(self, book: PolicyBook, as_of: date) -> None:
        self.book = book
        self.cache: dict[date, Catalogue | None] = {}
        shown = book.in_force("catalogue", as_of)
        self.minor_shown = isinstance(shown, Catalogue) and shown.minor_shown_publicly

    def on(self, day: date) -> Catalogue | None:
        if day not in self.cache:
            try:
                self.cache[day] = self.book.catalogue(day)
            except LookupError:
                self.cache[day] = None
        return self.cache[day]


def _record_view(rec: _Record, as_of: date, catalogues: _Catalogues, person: bool,
                 marked_by: list[str], black_basis: bool) -> dict[str, Any] | None:
    catalogue = catalogues.on(rec.decision_date)
    item = catalogue.item(rec.item_code) if catalogue is not None else None
    if rec.decision_date > as_of:
        return None
    revoked = rec.revoked is not None
    repaired = rec.repaired_on is not None and rec.repaired_on <= as_of
    ended = rec.disclosure_ended_on is not None and rec.disclosure_ended_on <= as_of
    until = (add_months(rec.decision_date, item.max_disclosure_months)
             if item is not None and item.max_disclosure_months is not None else None)
    period_over = until is not None and as_of >= until
    minor_hidden = item is not None and item.severity == "minor" and not catalogues.minor_shown
    retention = catalogue.retention_years if catalogue is not None else 5
    shared_until = add_years(rec.decision_date, retention)
    public = (not revoked and item is not None and item.disclosure == "public" and not person
              and not repaired and not ended and not period_over and not minor_hidden)
    shared = not revoked and not repaired and (as_of < shared_until or black_basis)
    if revoked:
        status = "revoked"
    elif repaired:
        status = "repaired"
    elif ended or period_over:
        status = "disclosure_ended"
    else:
        status = "in_force"
    return {
        "id": rec.id, "department": rec.department, "item_code": rec.item_code,
        "item_name_zh": item.name_zh if item else None,
        "item_name_en": item.name_en if item else None,
        "category": item.category if item else None,
        "polarity": item.polarity if item else None,
        "severity": item.severity if item else None,
        "catalogue_version": catalogue.version if catalogue else None,
        "decision_number": rec.decision_number, "decision_date": _iso(rec.decision_date),
        "summary": rec.summary, "details": rec.details, "status": status,
        "corrected": bool(rec.corrections), "corrections": len(rec.corrections),
        "revoked": revoked, "repaired": repaired,
        "disclosure_ended": ended or period_over,
        "disclosure_ended_by": ("ruling" if ended else "period" if period_over else None),
        "disclosure_until": _iso(until), "shared_until": _iso(shared_until),
        "under_objection": bool(marked_by),
        "objections": marked_by, "public": public, "shared": shared,
        "in_force": status == "in_force",
    }


def next_change(records: list[dict[str, Any]], objections: list[dict[str, Any]],
                listings: list[dict[str, Any]], book: PolicyBook, as_of: date,
                acts: Iterable[date] = ()) -> date | None:
    """The first day after ``as_of`` on which the state changes by time alone (a disclosure or
    sharing period ends, a listing starts or ends, an objection falls overdue, a policy version
    takes effect, an act already known takes effect on its own date), so a read model knows
    when to recompute it."""
    days: list[date] = list(acts)
    for r in records:
        if r["status"] == "in_force":
            days += [date.fromisoformat(d) for d in (r["disclosure_until"], r["shared_until"]) if d]
    for x in listings:
        days += [date.fromisoformat(d) for d in (x["start"], x["ends_on"]) if d]
    for o in objections:
        if o["status"] == "accepted" and o["deadline"]:
            days.append(date.fromisoformat(o["deadline"]) + timedelta(days=1))
    for versions in book.versions.values():
        days += [p.effective_from for p in versions]
    future = [d for d in days if d > as_of]
    return min(future) if future else None


def objections_on(facts: Iterable[Fact], as_of: date, known_at: datetime | None = None
                  ) -> list[dict[str, Any]]:
    """Every objection's state on ``as_of``, with its subject (the objection queue)."""
    known = known_at if known_at is not None else end_of_day(as_of)
    replay = _Replay("*")
    for fact in sorted(facts, key=lambda f: f.position):
        if fact.recorded_at <= known:
            replay.apply(fact)
    views = []
    for o in replay.objections.values():
        if o.raised_on <= as_of:
            views.append({**_objection_view(o, as_of), "subject": o.subject})
    return sorted(views, key=lambda v: (v["raised_on"], v["number"]))


def absence(subject: str, as_of: datetime, tree_size: int) -> dict[str, Any]:
    """What an extract says of a subject the ledger holds no event about: that, and nothing
    else: no grade (a grade would be a statement about conduct nobody recorded)."""
    return {"reducer": REDUCER_VERSION, "subject": subject, "absent": True,
            "as_of": as_of.astimezone(CHINA_TIME).date().isoformat(),
            "known_at": as_of.astimezone(UTC).isoformat(timespec="microseconds"),
            "statement": f"no event about {subject} up to checkpoint {tree_size}"}


def _act_days(replay: _Replay) -> list[date]:
    """Every day on which a known act takes effect (some may lie after the day viewed)."""
    days: list[date | None] = []
    for rec in replay.records.values():
        days += [rec.repaired_on, rec.disclosure_ended_on]
    for o in replay.objections.values():
        days += [o.accepted_on, o.extended_on, o.declined_on, o.ruled_on, o.review_on]
    for x in replay.listings.values():
        days.append(x.removed_on)
    for repair in replay.repairs.values():
        days.append(repair.decided_on)
    for c in replay.commitments.values():
        days.append(c.settled_on)
    return [d for d in days if d is not None]


def subject_state(subject: str, facts: Iterable[Fact], policy_facts: Iterable[Fact],
                  as_of: date, known_at: datetime | None = None) -> dict[str, Any]:
    """The subject's records, objections, repairs, listings, commitments and grade on ``as_of``,
    as the ledger knew them at ``known_at`` (default: the end of ``as_of``)."""
    known = known_at if known_at is not None else end_of_day(as_of)
    replay, book = _replayed(subject, facts, policy_facts, known)
    return _state_on(subject, replay, book, as_of, known)


def states_on(subject: str, facts: Iterable[Fact], policy_facts: Iterable[Fact],
              days: Iterable[date], known_at: datetime) -> list[dict[str, Any]]:
    """``subject_state`` on each of ``days``, all as known at ``known_at``: the events are
    replayed once, and only the view is made for each day (a chart of the grade over time)."""
    replay, book = _replayed(subject, facts, policy_facts, known_at)
    return [_state_on(subject, replay, book, day, known_at) for day in days]


def _replayed(subject: str, facts: Iterable[Fact], policy_facts: Iterable[Fact],
              known: datetime) -> tuple[_Replay, PolicyBook]:
    book = policy_book(policy_facts, known)
    replay = _Replay(subject)
    for fact in sorted(facts, key=lambda f: f.position):
        if fact.recorded_at <= known:
            replay.apply(fact)
    return replay, book


def _state_on(subject: str, replay: _Replay, book: PolicyBook, as_of: date,
              known: datetime) -> dict[str, Any]:
    person = subject.startswith("rid:")
    names = [n for on, n in replay.names if on <= as_of] or [n for _, n in replay.names[:1]]
    objections = [_objection_view(o, as_of) for o in replay.objections.values()
                  if o.raised_on <= as_of]
    objections.sort(key=lambda o: (o["raised_on"], o["number"]))
    listings = [_listing_view(x, as_of, book) for x in replay.listings.values()
                if x.decided_on <= as_of]
    listings.sort(key=lambda x: (x["start"], x["number"]))
    black_basis = {rid for x in listings if x["list"] == "black" and x["status"] == "active"
                   for rid in x["basis_records"]}
    records = []
    marks = _markings(objections)
    catalogues = _Catalogues(book, as_of)
    for rec in sorted(replay.records.values(), key=lambda x: (x.decision_date, x.submitted_position)):
        view = _record_view(rec, as_of, catalogues, person, marks.get(rec.id, []),
                            rec.id in black_basis)
        if view is not None:
            records.append(view)
    for listing in listings:
        listing["under_objection"] = listing["id"] in marks
    repairs = [{"id": x.id, "number": x.number, "record_id": x.record_id,
                "applied_on": _iso(x.applied_on),
                "status": x.decision if x.decided_on is not None and x.decided_on <= as_of
                else "applied",
                "decided_on": _iso(x.decided_on) if x.decided_on and x.decided_on <= as_of else None,
                "checks": x.checks if x.decided_on and x.decided_on <= as_of else []}
               for x in replay.repairs.values() if x.applied_on <= as_of]
    repairs.sort(key=lambda x: (x["applied_on"], x["number"]))
    commitments = [{"id": c.id, "number": c.number, "text": c.text, "context": c.context,
                    "made_on": _iso(c.made_on), "due_on": _iso(c.due_on),
                    "outcome": c.outcome if c.settled_on and c.settled_on <= as_of else None,
                    "settled_on": _iso(c.settled_on) if c.settled_on and c.settled_on <= as_of
                    else None}
                   for c in replay.commitments.values() if c.made_on <= as_of]
    commitments.sort(key=lambda c: (c["made_on"], c["number"]))
    return {
        "reducer": REDUCER_VERSION,
        "changes_on": _iso(next_change(records, objections, listings, book, as_of,
                                       _act_days(replay))),
        "subject": subject,
        "kind": replay.kind,
        "name": names[-1] if names else None,
        "as_of": as_of.isoformat(),
        "known_at": known.astimezone(UTC).isoformat(timespec="microseconds"),
        "records": records,
        "objections": objections,
        "repairs": repairs,
        "listings": listings,
        "commitments": commitments,
        "grade": grade(records, commitments, listings, book, as_of),
    }
