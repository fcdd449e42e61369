"""The credit check over HTTP (信用核查): a department, the credit office or an agency checks a
subject before deciding a matter; the check is recorded, and a receipt signed by the platform
returned. Auditors and the credit office list who checked whom."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from domain.policies import MATTERS
from web.api.caller import signer
from web.api.subjects import subject_key
from web.app import door
from workflows.checks import CreditChecks

blp = Blueprint("checks", __name__, url_prefix="/api/checks",
                description="Credit checks before a decision, with signed receipts")


class CheckIn(Schema):
    subject = fields.String(required=True, validate=validate.Length(min=5, max=64))
    matter = fields.String(required=True, validate=validate.OneOf(MATTERS))
    case_number = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                metadata={"description": "the case the check is for"})


class ChecksQuery(Schema):
    subject = fields.String(validate=validate.Length(min=5, max=64))


@blp.route("", methods=["POST"])
@blp.arguments(CheckIn)
@blp.response(201, description="The receipt: a JWS signed by the platform (FORMAT.md §10)",
              content_type="application/credit-check-receipt+json")
@blp.doc(security=[{"bearer": []}])
def check(body: dict[str, Any]) -> Response:
    """Check a subject for a matter: its lists in force with the measures that apply to the
    matter, and its grade; recorded, and answered with a signed receipt."""
    reader = signer("check.make")
    subject = subject_key(body["subject"])
    receipt = door().write(lambda win: CreditChecks(win.ledger).check(
        reader, subject, body["matter"], body["case_number"]), read_models=False)
    return Response(receipt.to_json(), status=201,
                    mimetype="application/credit-check-receipt+json")


@blp.route("", methods=["GET"])
@blp.arguments(ChecksQuery, location="query")
@blp.response(200, description="The recorded checks, oldest first")
@blp.doc(security=[{"bearer": []}])
def checks(query: dict[str, Any]) -> dict[str, Any]:
    """Who checked whom, for what, and what they were told (auditors, the credit office)."""
    signer("read.queries")
    subject = subject_key(query["subject"]) if query.get("subject") else None
    with door().window() as win:
        return {"checks": CreditChecks(win.ledger).checks_of(subject)}
