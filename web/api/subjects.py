"""A subject's file over HTTP, as the caller may see it (docs/PERMISSIONS.md): the state on a
day as known at a time, what changed between two days, and the signed extract. Without a token
the caller is the public; every read beyond the public file is logged before it is answered."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Response, abort
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from domain import clock
from domain.identifiers import InvalidIdentifier, SubjectRef, parse_subject
from web.api.caller import caller, signer
from web.api.schemas import NAME, TEXT, DiffQuery, ExtractIn, StateQuery
from web.app import door

blp = Blueprint("subjects", __name__, url_prefix="/api/subjects",
                description="A subject's file, diff and signed extract")
OPTIONAL_TOKEN: list[dict[str, list[str]]] = [{}, {"bearer": []}]


def subject_ref(text: str, status: int = 404) -> SubjectRef:
    """The subject named in a path (a bad identifier: 404) or a body (422)."""
    try:
        return parse_subject(text, today=clock.today_in_china())
    except (InvalidIdentifier, ValueError) as exc:
        abort(status, "no such subject" if status == 404 else str(exc))


def subject_key(text: str) -> str:
    return subject_ref(text).key


def day(text: str | None) -> date | None:
    return None if text is None else clock.parse_day(text)


def instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return clock.parse_instant(text)
    except ValueError:
        abort(422, f"{text!r} is not an ISO date or date-time")


class SubjectIn(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=5, max=64),
                            metadata={"example": "uscc:91330112MA2B0XXXXX"})
    name = fields.String(required=True, validate=NAME)
    kind = fields.String(validate=validate.OneOf(("legal_person", "natural_person",
                                                  "other_organisation")))


class RenameIn(Schema):
    name = fields.String(required=True, validate=NAME)
    reason = fields.String(required=True, validate=TEXT)


@blp.route("", methods=["POST"])
@blp.arguments(SubjectIn)
@blp.response(201, description="The subject is registered (its identifier masked)")
@blp.doc(security=[{"bearer": []}])
def register(body: dict[str, Any]) -> dict[str, Any]:
    """Register a subject under its identifier (a department or the credit office)."""
    actor = signer("subject.register").name
    ref = subject_ref(body["subject"], status=422)
    subject = door().write(lambda win: win.services.register_subject(
        actor, ref, body["name"], body.get("kind")))
    return {"subject": ref.masked(), "kind": subject.kind, "status": "registered"}


@blp.route("/<path:key>/name", methods=["POST"])
@blp.arguments(RenameIn)
@blp.response(201, description="The change of name is recorded")
@blp.doc(security=[{"bearer": []}])
def rename(body: dict[str, Any], key: str) -> dict[str, Any]:
    """Record a subject's change of name (a department or the credit office)."""
    actor = signer("subject.rename").name
    ref = subject_ref(key)
    door().write(lambda win: win.services.rename_subject(actor, ref, body["name"],
                                                         body["reason"]))
    return {"subject": ref.masked(), "status": "renamed"}


@blp.route("/<path:key>", methods=["GET"])
@blp.arguments(StateQuery, location="query")
@blp.response(200, description="A JSON object (docs/CREDIT.md, FORMAT.md)")
@blp.doc(security=OPTIONAL_TOKEN)
def state(query: dict[str, Any], key: str) -> dict[str, Any]:
    """The file on ``as_of`` (default today) as known at ``known_at`` (default now)."""
    reader = caller()
    subject = subject_key(key)
    with door().window() as win:
        return win.reads.state(reader, subject, day(query.get("as_of")),
                               instant(query.get("known_at")), query.get("purpose"))


@blp.route("/<path:key>/diff", methods=["GET"])
@blp.arguments(DiffQuery, location="query")
@blp.response(200, description="A JSON object (docs/CREDIT.md, FORMAT.md)")
@blp.doc(security=OPTIONAL_TOKEN)
def diff(query: dict[str, Any], key: str) -> dict[str, Any]:
    """What changed between ``from`` and ``to`` (default today), and the events that did it."""
    reader = caller()
    subject = subject_key(key)
    start = day(query["start"])
    assert start is not None
    with door().window() as win:
        return win.reads.diff(reader, subject, start, day(query.get("end")) or
                              clock.today_in_china(), instant(query.get("known_at")),
                              query.get("purpose"))


@blp.route("/<path:key>/extract", methods=["POST"])
@blp.arguments(ExtractIn)
@blp.response(201, description="The signed extract (a JWS, FORMAT.md §8)",
              content_type="application/credit-extract+json")
@blp.doc(security=OPTIONAL_TOKEN)
def extract(body: dict[str, Any], key: str) -> Response:
    """The signed extract (FORMAT.md §8), for those who may take it; logged."""
    reader = caller()
    subject = subject_key(key)
    with door().window() as win:
        issued = win.reads.extract(reader, subject, instant(body.get("as_of")),
                                   body.get("purpose"))
    return Response(issued.to_json(), status=201, mimetype="application/credit-extract+json")
