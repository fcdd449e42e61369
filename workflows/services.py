"""The credit workflows: records, objections, repair, lists, commitments, subjects, policies.

Each service checks who may run it (``domain.permissions``), loads what it needs, runs the domain
command and saves every aggregate it changed in one transaction, so a refusal writes nothing.
Rules live in the aggregates; what a rule needs to know about a subject comes from the pure reducer
(``domain.state``) over the subject's signed events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

from domain import clock
from domain.authorities import CREDIT_OFFICE
from domain.base import DomainError, LedgerAggregate, check_not_before
from domain.commitments import Commitment, commitment_id
from domain.history import (
    attribute,
    changed_by_time,
    diff_states,
    effective_day,
    related_aggregates,
)
from domain.identifiers import SubjectRef, mask_subject_key
from domain.listings import Listing, ListingRuleBroken, check_basis, listing_id
from domain.objections import Objection, objection_id
from domain.periods import add_months
from domain.permissions import check_permitted
from domain.policies import NoPolicyInForce
from domain.policy_versions import PolicyVersion
from domain.records import CreditRecord, today_in_china
from domain.repairs import RecordFacts, RepairApplication, RuleCheck, repair_id
from domain.state import objections_on, subject_state
from domain.subjects import Subject, subject_id
from ledger.application import CreditLedger
from ledger.collector import few_collections
from ledger.errors import (
    AlreadyRecorded,
    LedgerError,
    RecordAlreadySubmitted,
    SubjectNotRegistered,
    SubjectRegisteredMeanwhile,
)
from ledger.presigning import Presigner
from ledger.signing import Presigned, SigningSession
from workflows.policy_files import bundled_policies


@dataclass(frozen=True)
class RecordSubmission:
    """One record a department submits. ``subject_name`` registers a new subject."""

    actor: str
    subject: SubjectRef
    item_code: str
    decision_number: str
    decision_date: date
    summary: str
    details: dict[str, Any] | None = None
    subject_name: str | None = None


@dataclass(frozen=True)
class SubmittedBatch:
    """A batch of records written: their ids, in order, and how many subjects it registered."""

    record_ids: list[UUID]
    subjects_registered: int


# File-number prefixes, from the pinyin of each case's Chinese name.
OBJECTION_PREFIX = "YY"  # 异议 yìyì, objection
REPAIR_PREFIX = "XF"  # 信用修复 xiūfù, credit repair
LISTING_PREFIX = "MD"  # 名单 míngdān, red or black list
COMMITMENT_PREFIX = "CN"  # 信用承诺 chéngnuò, credit commitment


def case_number(prefix: str, day: date, *parts: object) -> str:
    """A stable file number from what identifies the case, e.g. ``YY-2026-3f9a1c2e``."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:8]
    return f"{prefix}-{day.year}-{digest}"


def submission_events(batch: Sequence[RecordSubmission], catalogues: Sequence[Any]
                      ) -> list[CreditRecord.Event]:
    """The Submitted events of a batch of records, each under the catalogue in force on its
    decision date. Reads nothing of the ledger: a presigning process runs it too."""
    events = [
        CreditRecord.submission(
            actor=s.actor, subject=s.subject, item_code=s.item_code,
            decision_number=s.decision_number, decision_date=s.decision_date,
            summary=s.summary, details=s.details, catalogue=catalogue)
        for s, catalogue in zip(batch, catalogues, strict=True)
    ]
    ids = [e.originator_id for e in events]
    if len(set(ids)) != len(ids):
        raise RecordAlreadySubmitted("the batch submits the same record twice")
    return events


def registered_and_submitted(registering: Sequence[RecordSubmission],
                             batch: Sequence[RecordSubmission], catalogues: Sequence[Any]
                             ) -> list[LedgerAggregate.Event]:
    """The Registered events of the subjects ``registering`` names, then the batch's Submitted
    events (``submission_events``). Reads nothing of the ledger: a presigning process runs it
    too."""
    return [*registrations_of(registering), *submission_events(batch, catalogues)]


def registrations_of(registering: Iterable[RecordSubmission]) -> list[LedgerAggregate.Event]:
    """The Registered event of each submission's subject, under the name it gives."""
    return [Subject.registration(actor=s.actor, ref=s.subject, name=s.subject_name or "")
            for s in registering]


# A batch waiting for its signatures: its submissions, the call that waits for them, and the
# submissions whose subjects it registers among them (None: decided as it is stored).
Pending = tuple[list[RecordSubmission], Callable[[], Presigned], list[RecordSubmission] | None]


class CreditServices:
    """What authorities do through the platform; one method per command of the matrix."""

    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger

    def permit(self, command: str, actor: str) -> str:
        role = self.ledger.role_of(actor)
        check_permitted(command, actor, role)
        return role

    # -- policies -----------------------------------------------------------------------------

    def publish_policy(self, actor: str, document: dict[str, Any]) -> PolicyVersion:
        """Publish one policy version (catalogue, grading, measures or calendar)."""
        self.permit("policy.publish", actor)
        version = PolicyVersion.publish(actor=actor, document=document)
        self.ledger.save_new(version, what=f"{version.kind} policy {version.policy_version}")
        return version

    def publish_bundled(self, actor: str = CREDIT_OFFICE,
                        kinds: Sequence[str] | None = None,
                        until: date | None = None) -> list[str]:
        """Publish the repository's policy versions the ledger does not hold yet."""
        published = []
        for document in bundled_policies():
            if kinds is not None and document["kind"] not in kinds:
                continue
            if until is not None and date.fromisoformat(document["effective_from"]) > until:
                continue
            if not self.ledger.policies.has(document["kind"], document["version"]):
                self.publish_policy(actor, document)
                published.append(f"{document['kind']} {document['version']}")
        return published

    def catalogue(self, day: date) -> Any:
        try:
            return self.ledger.policies.catalogue(day)
        except NoPolicyInForce as exc:
            raise LedgerError(str(exc)) from exc

    # -- subjects -----------------------------------------------------------------------------

    def register_subject(self, actor: str, ref: SubjectRef, name: str,
                         kind: str | None = None) -> Subject:
        self.permit("subject.register", actor)
        subject = Subject.register(actor=actor, ref=ref, name=name, kind=kind)
        self.ledger.save_new(subject, what=f"subject {ref.masked()}")
        return subject

    def rename_subject(self, actor: str, ref: SubjectRef, name: str, reason: str) -> None:
        self.permit("subject.rename", actor)
        subject = self.subject(ref)
        subject.rename(actor=actor, name=name, reason=reason)
        self.ledger.save(subject)

    def subject(self, ref: SubjectRef | str) -> Subject:
        key = ref.key if isinstance(ref, SubjectRef) else ref
        try:
            return self.ledger.get(subject_id(key), Subject, "subject")
        except LedgerError:
            raise SubjectNotRegistered(key) from None

    # -- records ------------------------------------------------------------------------------

    def submit_record(self, submission: RecordSubmission) -> UUID:
        return self.submit_records([submission])[0]

    def submit_records(self, submissions: Iterable[RecordSubmission]) -> list[UUID]:
        """Submit records in one transaction (all or nothing); registers new subjects named in
        the submissions."""
        batch = list(submissions)
        return self._store_records(batch, self._sign_records(*self._ready(batch))()).record_ids

    def submit_record_batches(self, batches: Iterable[Sequence[RecordSubmission]],
                              processes: bool | None = None) -> Iterator[SubmittedBatch]:
        """Submit batches in turn, each as ``submit_records`` does (its own transaction, all
        or nothing), yielding each once it is written; the first refusal stops the run with
        the batches before it written. The next batch's records are built and signed while
        this one is written (an import, the bench): from the second batch on, in a process of
        their own once it has started (``ledger.presigning``; ``processes`` as there)."""
        source = iter(batches)
        with self.ledger.presigning(processes) as presigner:
            pending = self._sign_later(presigner, next(source, None), ahead=set())
            while pending is not None:
                # the collector set aside for a batch's work, not across the yield: what the
                # caller does between batches runs with the collector as the caller set it
                with few_collections():
                    batch, signing, registering = pending
                    presigned = signing()
                    following = next(source, None)
                    if following is not None:
                        presigner.start_process()  # an import of one batch does not wait
                    # every subject this batch names exists once it is written (it registers
                    # those the ledger did not know, or it is refused and the run stops)
                    pending = self._sign_later(presigner, following, ahead={
                        subject_id(s.subject.key) for s in batch})
                    stored = self._store_records(batch, presigned, registering)
                yield stored

    def _sign_later(self, presigner: Presigner, batch: Sequence[RecordSubmission] | None,
                    ahead: set[UUID]) -> Pending | None:
        """The batch handed to the presigner with the registrations of its new subjects: those
        neither the ledger nor the batch being written (``ahead``) has."""
        if batch is None:
            return None
        batch = list(batch)
        _, catalogues, snapshot = self._ready(batch)  # here: what it reads of the ledger
        registering: list[RecordSubmission] | None
        try:
            registering = self.unregistered(batch, ahead)
        except (DomainError, LedgerError):
            # refused again as the batch is stored: the run stops there, with the batches
            # before it written
            registering = None
        return batch, presigner.presign(registered_and_submitted,
                                        (registering or [], batch, catalogues), snapshot), registering

    def _ready(self, batch: Sequence[RecordSubmission]
               ) -> tuple[Sequence[RecordSubmission], list[Any], tuple[SigningSession, int]]:
        """What building and signing a batch's records needs from the ledger: the submitters'
        permission, each record's catalogue, the keys."""
        for actor in {s.actor for s in batch}:
            self.permit("record.submit", actor)
        catalogues = [self.catalogue(s.decision_date) for s in batch]
        return batch, catalogues, self.ledger.signing_snapshot()

    def _sign_records(self, batch: Sequence[RecordSubmission], catalogues: Sequence[Any],
                      snapshot: tuple[SigningSession, int]) -> Callable[[], Presigned]:
        """The batch's Submitted events, their signing started (reads nothing of the ledger:
        any thread); the call returned waits for the signatures."""
        return self.ledger.start_presigning(submission_events(batch, catalogues), snapshot)

    def _store_records(self, batch: Sequence[RecordSubmission], presigned: Presigned,
                       registering: list[RecordSubmission] | None = None) -> SubmittedBatch:
        """Save the signed records after the registrations of the subjects not yet known:
        those signed ahead with them (the first ``len(registering)`` presigned events), else
        built here."""
        signed_ahead = len(registering) if registering is not None else 0
        records = Presigned(presigned.events[signed_ahead:], presigned.stored[signed_ahead:],
                            presigned.seen)
        ids = [e.originator_id for e in records.events]
        # the registrations saved, and those of them signed here
        unsigned = self.new_subjects(batch) if registering is None else []
        registrations = unsigned or cast(list[LedgerAggregate.Event],
                                         presigned.events[:signed_ahead])
        signed = presigned
        for attempt in (1, 2):
            try:
                self.ledger.save_new(
                    *unsigned, presigned=signed,
                    what="a record with the same department, item, decision number and subject")
                return SubmittedBatch(ids, len(registrations))
            except AlreadyRecorded:
                if not registrations or not self._registered_meanwhile(registrations, ids):
                    raise
                if attempt == 2 or self.ledger.recorder.in_bulk:
                    raise SubjectRegisteredMeanwhile(
                        [mask_subject_key(vars(r)["subject"]) for r in registrations]) from None
                # another writer registered the subject since we looked: once more, without it
                registrations = unsigned = self.new_subjects(batch)
                signed = records
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _registered_meanwhile(self, registrations: Sequence[LedgerAggregate.Event],
                              record_ids: Sequence[UUID]) -> bool:
        """Whether a save refused as a duplicate clashed on a subject registration, not on a
        record: none of the records exists, and one of the subjects does."""
        try:
            return (not self.ledger.existing(record_ids)
                    and bool(self.ledger.existing(r.originator_id for r in registrations)))
        except Exception:
            return True

    def new_subjects(self, batch: Sequence[RecordSubmission]) -> list[LedgerAggregate.Event]:
        """Registrations (Registered events) for the batch's subjects the ledger does not know
        yet."""
        return registrations_of(self.unregistered(batch))

    def unregistered(self, batch: Sequence[RecordSubmission], ahead: set[UUID] | None = None
                     ) -> list[RecordSubmission]:
        """For each subject the batch names that neither the ledger nor ``ahead`` (subjects a
        batch being written registers) has, the submission that registers it: the first
        giving a name, whose department may register subjects."""
        wanted: dict[UUID, RecordSubmission] = {}
        for s in batch:
            sid = subject_id(s.subject.key)
            if ahead and sid in ahead:
                continue
            if sid not in wanted or (wanted[sid].subject_name is None and s.subject_name):
                wanted[sid] = s
        known = self.ledger.existing(wanted)
        new = []
        for sid, s in wanted.items():
            if sid in known:
                continue
            if not s.subject_name:
                raise SubjectNotRegistered(s.subject.masked())
            self.permit("subject.register", s.actor)
            new.append(s)
        return new

    def record(self, record_id: UUID) -> CreditRecord:
        return self.ledger.get(record_id, CreditRecord, "credit record")

    def correct_record(self, record_id: UUID, *, actor: str, reason: str,
                       changes: dict[str, Any], corrected_on: date | None = None) -> None:
        self.permit("record.correct", actor)
        record = self.record(record_id)
        record.correct(actor=actor, reason=reason, changes=changes, corrected_on=corrected_on)
        self.ledger.save(record)

    def revoke_record(self, record_id: UUID, *, actor: str, reason: str,
                      revoked_on: date | None = None) -> None:
        self.permit("record.revoke", actor)
        record = self.record(record_id)
        record.revoke(actor=actor, reason=reason, revoked_on=revoked_on)
        self.ledger.save(record)

    # -- objections ---------------------------------------------------------------------------

    def objection(self, number: str) -> Objection:
        return self.ledger.get(objection_id(number), Objection, "objection")

    def raise_objection(self, actor: str, *, subject: SubjectRef, target_kind: str,
                        target_id: UUID, grounds: str, raised_by: str = "subject",
                        agent: str | None = None, raised_on: date | None = None,
                        number: str | None = None) -> str:
        """Receive an objection about one of the subject's records or listings."""
        self.permit("objection.raise", actor)
        day = raised_on or today_in_china()
        target = self._target(target_kind, target_id)
        if target.subject_key != subject.key:
            raise LedgerError(f"{target_kind} {target_id} is not about {subject.masked()}")
        if isinstance(target, CreditRecord):
            check_not_before("the objection date", day, "the record's decision date",
                             target.decision_date)
        elif isinstance(target, Listing):
            check_not_before("the objection date", day, "the listing's start", target.start)
        num = number or case_number(OBJECTION_PREFIX, day, subject.key, target_id, grounds, day)
        objection = Objection.raise_(actor=actor, subject=subject.key, number=num,
                                     target_kind=target_kind, target_id=str(target_id),
                                     grounds=grounds, raised_on=day, raised_by=raised_by,
                                     agent=agent)
        self.ledger.save_new(objection, what=f"objection {num}")
        return num

    def _target(self, kind: str, target_id: UUID) -> LedgerAggregate:
        if kind == "record":
            return self.record(target_id)
        if kind == "listing":
            return self.ledger.get(target_id, Listing, "listing")
        raise LedgerError(f"an objection is about a record or a listing, not {kind!r}")

    def calendar(self, day: date) -> Any:
        try:
            return self.ledger.policies.calendar(day)
        except NoPolicyInForce as exc:
            raise LedgerError(str(exc)) from exc

    def accept_objection(self, actor: str, number: str, accepted_on: date | None = None) -> date:
        """Accept: the target is marked under objection; returns the ruling deadline."""
        self.permit("objection.accept", actor)
        objection = self.objection(number)
        day = accepted_on or today_in_china()
        objection.accept(actor=actor, accepted_on=day, calendar=self.calendar(day))
        self.ledger.save(objection)
        assert objection.deadline is not None
        return objection.deadline

    def decline_objection(self, actor: str, number: str, reason: str,
                          declined_on: date | None = None) -> None:
        self.permit("objection.decline", actor)
        objection = self.objection(number)
        objection.decline(actor=actor, reason=reason, declined_on=declined_on or today_in_china())
        self.ledger.save(objection)

    def extend_objection(self, actor: str, number: str, reason: str,
                         extended_on: date | None = None) -> date:
        self.permit("objection.extend", actor)
        objection = self.objection(number)
        objection.extend(actor=actor, reason=reason,
                         calendar=self.calendar(objection.accepted_on or today_in_china()),
                         extended_on=extended_on or today_in_china())
        self.ledger.save(objection)
        assert objection.deadline is not None
        return objection.deadline

    def rule_objection(self, actor: str, number: str, *, outcome: str, reasoning: str,
                       changes: dict[str, Any] | None = None,
                       ruled_on: date | None = None) -> None:
        """Rule, and carry out the outcome on the record or listing in the same transaction."""
        self.permit("objection.rule", actor)
        objection = self.objection(number)
        day = ruled_on or today_in_china()
        objection.rule(actor=actor, outcome=outcome, reasoning=reasoning, ruled_on=day,
                       changes=changes)
        target = self._carry_out(objection, outcome, reasoning, changes, day, actor)
        self.ledger.save(objection, target)

    def request_review(self, actor: str, number: str, grounds: str,
                       requested_on: date | None = None) -> None:
        self.permit("objection.review", actor)
        objection = self.objection(number)
        objection.request_review(actor=actor, grounds=grounds,
                                 requested_on=requested_on or today_in_china())
        self.ledger.save(objection)

    def rule_review(self, actor: str, number: str, *, result: str, reasoning: str,
                    outcome: str | None = None, changes: dict[str, Any] | None = None,
                    ruled_on: date | None = None) -> None:
        self.permit("objection.review", actor)
        objection = self.objection(number)
        day = ruled_on or today_in_china()
        objection.rule_review(actor=actor, result=result, reasoning=reasoning, ruled_on=day,
                              outcome=outcome, changes=changes)
        target = None
        if result == "revised" and outcome is not None:
            target = self._carry_out(objection, outcome, f"review: {reasoning}", changes, day,
                                     actor)
        self.ledger.save(objection, target)

    def _carry_out(self, objection: Objection, outcome: str, reasoning: str,
                   changes: dict[str, Any] | None, day: date,
                   actor: str) -> LedgerAggregate | None:
        if outcome == "reject":
            return None
        reason = f"objection {objection.number}: {reasoning}"
        if objection.target_kind == "listing":
            listing = self.ledger.get(UUID(objection.target_id), Listing, "listing")
            listing.remove(actor=actor, reason=reason, removed_on=day, objection=objection.number)
            return listing
        # the outcome takes effect on the ruling's own date, however late it is recorded
        record = self.record(UUID(objection.target_id))
        if outcome == "revoke":
            record.revoke(actor=actor, reason=reason, objection=objection.number, revoked_on=day)
        elif outcome in ("correct", "complete"):
            record.correct(actor=actor, reason=reason, changes=dict(changes or {}),
                           objection=objection.number, corrected_on=day)
        elif outcome == "end_disclosure":
            record.end_disclosure(actor=actor, reason=reason, objection=objection.number,
                                  ended_on=day)
        return record

    # -- credit repair ------------------------------------------------------------------------

    def repair(self, number: str) -> RepairApplication:
        return self.ledger.get(repair_id(number), RepairApplication, "repair application")

    def apply_repair(self, actor: str, record_id: UUID, *, evidence: list[str], commitment: str,
                     applied_on: date | None = None, number: str | None = None) -> str:
        self.permit("repair.apply", actor)
        record = self.record(record_id)
        day = applied_on or today_in_china()
        check_not_before("the application date", day, "the record's decision date",
                         record.decision_date)
        num = number or case_number(REPAIR_PREFIX, day, record_id, day)
        application = RepairApplication.apply(
            actor=actor, subject=record.subject, number=num, record_id=str(record_id),
            evidence=evidence, commitment=commitment, applied_on=day)
        self.ledger.save_new(application, what=f"repair application {num}")
        return num

    def repair_checks(self, number: str) -> list[RuleCheck]:
        """The eligibility rules for an application, as they stand now."""
        from domain.repairs import eligibility
        application = self.repair(number)
        return eligibility(self._record_facts(application), application.applied_on,
                           application.evidence, application.commitment)

    def decide_repair(self, actor: str, number: str, *, approve: bool, reason: str = "",
                      decided_on: date | None = None) -> list[RuleCheck]:
        """Approve (every rule passed; the record is marked repaired) or refuse, explained."""
        self.permit("repair.decide", actor)
        application = self.repair(number)
        record = self.record(UUID(application.record_id))
        day = decided_on or today_in_china()
        checks = application.decide(actor=actor, approve=approve,
                                    facts=self._record_facts(application), decided_on=day,
                                    reason=reason)
        if approve:
            # repaired from the decision's own date, however late it is recorded
            record.mark_repaired(actor=actor, application=application.number, repaired_on=day)
            self.ledger.save(application, record)
        else:
            self.ledger.save(application)
        return checks

    def _record_facts(self, application: RepairApplication) -> RecordFacts:
        """The record and its subject under the rules in force on the application date."""
        record = self.record(UUID(application.record_id))
        item = self.catalogue(application.applied_on).item(record.item_code)
        state = self.state(record.subject, application.applied_on)
        black = any(x["list"] == "black" and x["status"] == "active" for x in state["listings"])
        return RecordFacts(
            record_id=application.record_id, item_code=record.item_code,
            decision_date=record.decision_date,
            negative=bool(item and item.negative), revoked=record.revoked,
            repaired=record.repaired, repairable=bool(item and item.repairable),
            min_disclosure_months=item.min_disclosure_months if item else 0,
            black_listed=black)

    # -- lists --------------------------------------------------------------------------------

    def add_listing(self, actor: str, *, list_name: str, subject: SubjectRef, legal_basis: str,
                    basis_records: Sequence[UUID], start: date, planned_end: date | None = None,
                    notified_on: date | None = None, removal_conditions: str = "",
                    number: str | None = None) -> str:
        """Put a subject on the black or red list, on the basis of its records."""
        self.permit("list.add", actor)
        self.subject(subject)
        try:
            measures = self.ledger.policies.measures(start)
        except NoPolicyInForce as exc:
            raise LedgerError(str(exc)) from exc
        end = planned_end or add_months(start, measures.default_months.get(list_name, 36))
        state = self.state(subject.key, start)
        records = {r["id"]: r for r in state["records"]}
        wanted = [str(r) for r in basis_records]
        missing = [r for r in wanted if r not in records]
        if missing:
            raise ListingRuleBroken(
                f"record {missing[0]} is not a record of {subject.masked()} on {start.isoformat()}")
        check_basis(list_name, [records[r] for r in wanted])
        if list_name == "red":
            if any(x["list"] == "black" and x["status"] == "active" for x in state["listings"]):
                raise ListingRuleBroken("a subject on the black list cannot be put on the red list")
            serious = [r for r in state["records"]
                       if r["in_force"] and r["severity"] == "serious" and r["polarity"] == "negative"]
            if serious:
                raise ListingRuleBroken(
                    f"serious negative record {serious[0]['decision_number']} is in force: "
                    "no red listing")
        num = number or case_number(LISTING_PREFIX, start, list_name, subject.key, start, legal_basis)
        listing = Listing.list_subject(
            actor=actor, list_name=list_name, subject=subject.key, number=num,
            legal_basis=legal_basis, basis_records=wanted, notified_on=notified_on, start=start,
            planned_end=end, removal_conditions=removal_conditions,
            measures_version=measures.version)
        self.ledger.save_new(listing, what=f"listing {num}")
        return num

    def listing(self, number: str) -> Listing:
        return self.ledger.get(listing_id(number), Listing, "listing")

    def remove_listing(self, actor: str, number: str, *, reason: str,
                       removed_on: date | None = None) -> None:
        self.permit("list.remove", actor)
        listing = self.listing(number)
        listing.remove(actor=actor, reason=reason, removed_on=removed_on or today_in_china())
        self.ledger.save(listing)

    # -- commitments --------------------------------------------------------------------------

    def make_commitment(self, actor: str, *, subject: SubjectRef, text: str, context: str,
                        made_on: date | None = None, due_on: date | None = None,
                        number: str | None = None) -> str:
        self.permit("commitment.make", actor)
        self.subject(subject)
        day = made_on or today_in_china()
        num = number or case_number(COMMITMENT_PREFIX, day, subject.key, text, day)
        commitment = Commitment.make(actor=actor, subject=subject.key, number=num, text=text,
                                     context=context, made_on=day, due_on=due_on)
        self.ledger.save_new(commitment, what=f"commitment {num}")
        return num

    def settle_commitment(self, actor: str, number: str, *, kept: bool, note: str,
                          settled_on: date | None = None) -> None:
        self.permit("commitment.settle", actor)
        commitment = self.ledger.get(commitment_id(number), Commitment, "commitment")
        commitment.settle(actor=actor, kept=kept, note=note,
                          settled_on=settled_on or today_in_china())
        self.ledger.save(commitment)

    # -- reading ------------------------------------------------------------------------------

    def diff(self, subject: str, start: date, end: date,
             known_at: datetime | None = None) -> dict[str, Any]:
        """What changed about ``subject`` from ``start`` to ``end``, and the signed events
        that changed it (those taking effect in between, and retroactive ones recorded then)."""
        if end < start:
            raise LedgerError("--to comes before --from")
        known = known_at or clock.now()
        facts = self.ledger.facts_about(subject)
        self.ledger.refresh()
        before = subject_state(subject, facts, self.ledger.policy_facts, start, known)
        after = subject_state(subject, facts, self.ledger.policy_facts, end, known)
        window = [f for f in facts if f.recorded_at <= known and start < effective_day(f) <= end]
        events = [{
            "notification_id": f.notification_id, "position": f.position, "event": f.kind,
            "aggregate": f.aggregate_id, "version": f.version, "actor": f.actor, "kid": f.kid,
            "recorded_at": f.recorded_at.isoformat(), "effective_on": effective_day(f).isoformat(),
        } for f in window]
        changes = attribute(diff_states(before, after), window, related_aggregates(facts))
        return {"subject": subject, "from": start.isoformat(), "to": end.isoformat(),
                "known_at": known.isoformat(), "changes": changes,
                "by_time": changed_by_time(before, after), "events": events,
                "before": before, "after": after}

    def overdue_objections(self, as_of: date | None = None) -> list[dict[str, Any]]:
        """Objections accepted and still not ruled after their deadline, oldest first."""
        day = as_of or today_in_china()
        views = objections_on(self.ledger.stream_facts("Objection"), day, clock.now())
        return [v for v in views if v["overdue"]]

    def state(self, subject: str, as_of: date | None = None,
              known_at: datetime | None = None) -> dict[str, Any]:
        """The subject's state on ``as_of`` (default today) as known at ``known_at`` (default
        now)."""
        self.ledger.refresh()
        return subject_state(subject, self.ledger.facts_about(subject), self.ledger.policy_facts,
                             as_of or today_in_china(), known_at or clock.now())
