"""Objections, credit repair, lists and commitments over HTTP: the same service commands as
`credit objection|repair|list|commitment`. A subject raises an objection or applies for repair
about its own file through the window: the credit office records it (its key signs), as at the
counter (``subject_via_window`` in domain/permissions.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from flask import abort
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from domain import clock
from domain.authorities import CREDIT_OFFICE
from domain.identifiers import parse_subject
from domain.listings import listing_id
from domain.permissions import COMMANDS, NotPermitted
from web.api.caller import caller, signer
from web.api.schemas import DAY, TEXT
from web.api.subjects import day
from web.app import door
from workflows.services import CreditServices

blp = Blueprint("cases", __name__, url_prefix="/api",
                description="Objections, credit repair, lists, commitments")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
OUTCOMES = ("revoke", "correct", "complete", "end_disclosure", "remove_from_list", "reject")
T = TypeVar("T")


def acting(command: str, subject: str | Callable[[], str] | None = None) -> str:
    """Whose key signs ``command``: the caller's, or for a subject acting on its own file
    through the window, the credit office's. ``subject`` may be a lookup (of the case's
    subject): it is made only for a subject at the window, after everyone else is checked, so
    a caller who may not act learns nothing of which cases exist."""
    reader = caller()
    if reader.role == "subject" and COMMANDS[command].subject_via_window:
        whose = subject() if callable(subject) else subject
        if whose is None or reader.subject != whose:
            raise NotPermitted(command, reader.name, reader.role)
        return CREDIT_OFFICE
    return signer(command).name


def subject_of_objection(number: str) -> str:
    with door().window() as win:
        return win.services.objection(number).subject


def subject_of_record(record: UUID) -> str:
    with door().window() as win:
        return win.services.record(record).subject


def run(work: Callable[[CreditServices], T]) -> T:
    """A service command as a write (read models brought up after it)."""
    return door().write(lambda win: work(win.services))


def changes_of(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    found = dict(raw)
    if isinstance(found.get("decision_date"), str):
        found["decision_date"] = clock.parse_day(found["decision_date"])
    return found


class On(Schema):
    on = fields.String(validate=DAY, metadata={"description": "the day it takes effect"})


class ObjectionIn(On):
    subject = fields.String(required=True, validate=validate.Length(min=5, max=64))
    record = fields.UUID()
    listing = fields.String(validate=validate.Length(min=1, max=100))
    grounds = fields.String(required=True, validate=TEXT)
    agent = fields.String(validate=validate.Length(min=1, max=200))
    number = fields.String(validate=validate.Length(min=1, max=100))


class Reason(On):
    reason = fields.String(required=True, validate=TEXT)


class RulingIn(On):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reasoning = fields.String(required=True, validate=TEXT)
    changes = fields.Dict(keys=fields.String())


class ReviewIn(On):
    grounds = fields.String(validate=TEXT)
    result = fields.String(validate=validate.OneOf(("upheld", "revised")))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    reasoning = fields.String(validate=TEXT)
    changes = fields.Dict(keys=fields.String())


class RepairIn(On):
    record = fields.UUID(required=True)
    evidence = fields.List(fields.String(validate=TEXT), required=True,
                           validate=validate.Length(min=1, max=50))
    commitment = fields.String(required=True, validate=TEXT)
    number = fields.String(validate=validate.Length(min=1, max=100))


class DecisionIn(On):
    approve = fields.Boolean(required=True)
    reason = fields.String(validate=TEXT, load_default="")


class ListingIn(Schema):
    list = fields.String(required=True, validate=validate.OneOf(("black", "red")))
    subject = fields.String(required=True, validate=validate.Length(min=5, max=64))
    legal_basis = fields.String(required=True, validate=TEXT)
    basis_records = fields.List(fields.UUID(), required=True)
    start = fields.String(validate=DAY)
    end = fields.String(validate=DAY)
    notified = fields.String(validate=DAY)
    removal_conditions = fields.String(validate=TEXT, load_default="")
    number = fields.String(validate=validate.Length(min=1, max=100))


class CommitmentIn(On):
    subject = fields.String(required=True, validate=validate.Length(min=5, max=64))
    text = fields.String(required=True, validate=TEXT)
    context = fields.String(validate=TEXT, load_default="")
    due = fields.String(validate=DAY)
    number = fields.String(validate=validate.Length(min=1, max=100))


class SettlementIn(On):
    kept = fields.Boolean(required=True)
    note = fields.String(required=True, validate=TEXT)


class Done(Schema):
    number = fields.String()
    status = fields.String()
    deadline = fields.String()
    checks = fields.List(fields.Dict())


def _abort(message: str) -> None:
    abort(422, message)


def ref(text: str) -> Any:
    return parse_subject(text, today=clock.today_in_china())


@blp.route("/objections", methods=["POST"])
@blp.arguments(ObjectionIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def raise_objection(body: dict[str, Any]) -> dict[str, Any]:
    """Raise an objection (异议) about one of the subject's records or listings."""
    subject = ref(body["subject"])
    actor = acting("objection.raise", subject.key)
    if bool(body.get("record")) == bool(body.get("listing")):
        _abort("name either a record or a listing")
    kind, target = (("record", body["record"]) if body.get("record")
                    else ("listing", listing_id(body["listing"])))
    number = run(lambda s: s.raise_objection(
        actor, subject=subject, target_kind=kind, target_id=target, grounds=body["grounds"],
        raised_by="agent" if body.get("agent") else "subject", agent=body.get("agent"),
        raised_on=day(body.get("on")), number=body.get("number")))
    return {"number": number, "status": "raised"}


@blp.route("/objections/<number>/acceptance", methods=["POST"])
@blp.arguments(On)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def accept_objection(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Accept an objection: the target is marked; the ruling is due in 5 working days."""
    actor = acting("objection.accept")
    deadline = run(lambda s: s.accept_objection(actor, number, day(body.get("on"))))
    return {"number": number, "status": "accepted", "deadline": deadline.isoformat()}


@blp.route("/objections/<number>/declination", methods=["POST"])
@blp.arguments(Reason)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def decline_objection(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Decline to accept an objection, with the reason."""
    actor = acting("objection.decline")
    run(lambda s: s.decline_objection(actor, number, body["reason"], day(body.get("on"))))
    return {"number": number, "status": "declined"}


@blp.route("/objections/<number>/extension", methods=["POST"])
@blp.arguments(Reason)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def extend_objection(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Extend the ruling period once, to 20 working days."""
    actor = acting("objection.extend")
    deadline = run(lambda s: s.extend_objection(actor, number, body["reason"],
                                                day(body.get("on"))))
    return {"number": number, "status": "extended", "deadline": deadline.isoformat()}


@blp.route("/objections/<number>/ruling", methods=["POST"])
@blp.arguments(RulingIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def rule_objection(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Rule; the outcome is carried out on the record or listing at once."""
    actor = acting("objection.rule")
    run(lambda s: s.rule_objection(actor, number, outcome=body["outcome"],
                                   reasoning=body["reasoning"],
                                   changes=changes_of(body.get("changes")),
                                   ruled_on=day(body.get("on"))))
    return {"number": number, "status": "ruled"}


@blp.route("/objections/<number>/review", methods=["POST"])
@blp.arguments(ReviewIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def review_objection(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Request a review of a ruling (``grounds``: the subject, through the window), or rule on
    one (``result``, ``reasoning``: the credit office)."""
    actor = acting("objection.review", lambda: subject_of_objection(number))
    reader = caller()
    if reader.role == "subject" and body.get("result"):
        raise NotPermitted("objection.review", reader.name, reader.role)
    if bool(body.get("grounds")) == bool(body.get("result")):
        _abort("give grounds to request a review, or a result to rule on one")
    if body.get("grounds"):
        run(lambda s: s.request_review(actor, number, body["grounds"], day(body.get("on"))))
        return {"number": number, "status": "review requested"}
    if not body.get("reasoning"):
        _abort("reasoning is required to rule on a review")
    run(lambda s: s.rule_review(actor, number, result=body["result"],
                                reasoning=body["reasoning"], outcome=body.get("outcome"),
                                changes=changes_of(body.get("changes")),
                                ruled_on=day(body.get("on"))))
    return {"number": number, "status": f"review {body['result']}"}


@blp.route("/repairs", methods=["POST"])
@blp.arguments(RepairIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def apply_repair(body: dict[str, Any]) -> dict[str, Any]:
    """Apply for credit repair (信用修复) of one record; answered with every rule's check."""
    record: UUID = body["record"]
    actor = acting("repair.apply", lambda: subject_of_record(record))

    def work(s: CreditServices) -> tuple[str, list[Any]]:
        num = s.apply_repair(actor, record, evidence=body["evidence"],
                             commitment=body["commitment"], applied_on=day(body.get("on")),
                             number=body.get("number"))
        return num, s.repair_checks(num)

    number, checks = run(work)
    return {"number": number, "status": "applied", "checks": [vars(c) for c in checks]}


@blp.route("/repairs/<number>/decision", methods=["POST"])
@blp.arguments(DecisionIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def decide_repair(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Approve (display and sharing end) or refuse, explained rule by rule."""
    actor = acting("repair.decide")
    checks = run(lambda s: s.decide_repair(actor, number, approve=body["approve"],
                                           reason=body["reason"],
                                           decided_on=day(body.get("on"))))
    return {"number": number, "status": "approved" if body["approve"] else "refused",
            "checks": [vars(c) for c in checks]}


@blp.route("/listings", methods=["POST"])
@blp.arguments(ListingIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def add_listing(body: dict[str, Any]) -> dict[str, Any]:
    """Put a subject on the black or red list, on the basis of its records."""
    actor = acting("list.add")
    start = day(body.get("start")) or clock.today_in_china()
    number = run(lambda s: s.add_listing(
        actor, list_name=body["list"], subject=ref(body["subject"]),
        legal_basis=body["legal_basis"], basis_records=body["basis_records"], start=start,
        planned_end=day(body.get("end")), notified_on=day(body.get("notified")),
        removal_conditions=body["removal_conditions"], number=body.get("number")))
    return {"number": number, "status": "listed"}


@blp.route("/listings/<number>/removal", methods=["POST"])
@blp.arguments(Reason)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def remove_listing(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Remove a subject from a list (移出)."""
    actor = acting("list.remove")
    run(lambda s: s.remove_listing(actor, number, reason=body["reason"],
                                   removed_on=day(body.get("on"))))
    return {"number": number, "status": "removed"}


@blp.route("/commitments", methods=["POST"])
@blp.arguments(CommitmentIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def make_commitment(body: dict[str, Any]) -> dict[str, Any]:
    """Record a subject's credit commitment (信用承诺)."""
    subject = ref(body["subject"])
    actor = acting("commitment.make", subject.key)
    number = run(lambda s: s.make_commitment(
        actor, subject=subject, text=body["text"], context=body["context"],
        made_on=day(body.get("on")), due_on=day(body.get("due")), number=body.get("number")))
    return {"number": number, "status": "made"}


@blp.route("/commitments/<number>/settlement", methods=["POST"])
@blp.arguments(SettlementIn)
@blp.response(201, Done)
@blp.doc(security=SECURITY)
def settle_commitment(body: dict[str, Any], number: str) -> dict[str, Any]:
    """Record whether a commitment was kept."""
    actor = acting("commitment.settle")
    run(lambda s: s.settle_commitment(actor, number, kept=body["kept"], note=body["note"],
                                      settled_on=day(body.get("on"))))
    return {"number": number, "status": "kept" if body["kept"] else "broken"}
