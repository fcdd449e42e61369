"""API tokens over HTTP, for the credit office: issue (the bearer is in the answer, once, and
never stored), list and revoke, as `credit tokens` does. Each is a signed event
(domain/access.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import abort
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.caller import signer
from web.api.schemas import TEXT
from web.app import door
from workflows.tokens import Tokens

blp = Blueprint("tokens", __name__, url_prefix="/api/tokens",
                description="Bearer tokens: issued, listed and revoked by the credit office")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


class TokenIn(Schema):
    principal = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "an authority's code, auditor:NAME, court:NAME, agency:NAME or "
                       "subject:IDENTIFIER"})
    note = fields.String(validate=validate.Length(max=2000), load_default="")


class TokenRevocationIn(Schema):
    reason = fields.String(required=True, validate=TEXT)


class IssuedOut(Schema):
    token_id = fields.String()
    principal = fields.String()
    role = fields.String()
    bearer = fields.String(metadata={"description": "shown once: the ledger keeps its digest"})


@blp.route("", methods=["POST"])
@blp.arguments(TokenIn)
@blp.response(201, IssuedOut)
@blp.doc(security=SECURITY)
def issue(body: dict[str, Any]) -> dict[str, Any]:
    """Issue a token for a principal; its bearer is in this answer and nowhere else."""
    actor = signer("token.issue").name
    issued = door().write(lambda win: Tokens(win.ledger).issue(actor, body["principal"],
                                                               body["note"]))
    return {"token_id": issued.token_id.hex, "principal": issued.principal,
            "role": issued.role, "bearer": issued.bearer}


@blp.route("", methods=["GET"])
@blp.response(200, description="Every token ever issued, with who issued and revoked it when")
@blp.doc(security=SECURITY)
def listed() -> dict[str, Any]:
    """Every token: id, principal, role, note, issued and revoked (never a secret)."""
    signer("token.issue")
    with door().window() as win:
        return {"tokens": Tokens(win.ledger).listed()}


@blp.route("/<token_id>/revocation", methods=["POST"])
@blp.arguments(TokenRevocationIn)
@blp.response(201, description="The token is revoked")
@blp.doc(security=SECURITY)
def revoke(body: dict[str, Any], token_id: str) -> dict[str, Any]:
    """Revoke a token: from now on it is refused."""
    actor = signer("token.revoke").name
    try:
        found = UUID(hex=token_id)
    except ValueError:
        abort(404, "no such token")
    door().write(lambda win: Tokens(win.ledger).revoke(actor, found, body["reason"]))
    return {"token_id": found.hex, "status": "revoked"}
