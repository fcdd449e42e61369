"""What anyone checking the ledger needs, and the credit office's policies: the key registry
(public: every authority's keys with their validity and fingerprints; registered, rotated and
revoked by the platform, as `credit keys` does) and the policy versions (listed by anyone,
published by the credit office, signed by its key). A new key's private half is generated on
the platform's server and stays there (CREDIT_SECRETS_DIR): the API never sends a secret."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from domain.authorities import AuthorityProfile
from web.api.caller import signer
from web.api.cases import run
from web.api.schemas import INSTANT, NAME, TEXT
from web.api.subjects import instant
from web.app import door
from workflows import administration

blp = Blueprint("registry", __name__, url_prefix="/api",
                description="The key registry and the policy versions")


@blp.route("/keys", methods=["GET"])
@blp.response(200, description="Every key of the registry, with its validity")
def keys() -> dict[str, Any]:
    """Every authority's keys: who, which key, from when to when, revoked or not, fingerprint."""
    with door().window() as win:
        return {"keys": administration.key_rows(win.ledger)}


class AuthorityIn(Schema):
    authority = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z][a-z0-9-]{1,31}$", error="a code of 2 to 32 lower-case letters, digits, hyphens"))
    kind = fields.String(validate=validate.OneOf(("department", "credit_office")),
                         load_default="department")
    name_zh = fields.String(required=True, validate=NAME)
    name_en = fields.String(required=True, validate=NAME)
    expires = fields.String(validate=INSTANT, metadata={"description": "the key's expiry"})


class RotationIn(Schema):
    authority = fields.String(required=True, validate=validate.Length(min=1, max=32))
    expires = fields.String(validate=INSTANT, metadata={"description": "the new key's expiry"})


class KeyRevocationIn(Schema):
    reason = fields.String(required=True, validate=TEXT)
    at = fields.String(validate=INSTANT,
                       metadata={"description": "revoked from (default now; may lie in the past)"})


class KeyOut(Schema):
    authority = fields.String()
    kid = fields.String()
    status = fields.String()


@blp.route("/keys", methods=["POST"])
@blp.arguments(AuthorityIn)
@blp.response(201, KeyOut)
@blp.doc(security=[{"bearer": []}])
def register(body: dict[str, Any]) -> dict[str, Any]:
    """Register a new authority with a newly generated key pair (the platform)."""
    signer("keys.register")
    profile = AuthorityProfile(body["authority"], body["kind"], body["name_zh"], body["name_en"])
    expires = instant(body.get("expires"))
    kid = door().write(lambda win: win.ledger.register_authority(profile, expires_at=expires))
    return {"authority": profile.code, "kid": kid, "status": "registered"}


@blp.route("/keys/rotation", methods=["POST"])
@blp.arguments(RotationIn)
@blp.response(201, KeyOut)
@blp.doc(security=[{"bearer": []}])
def rotate(body: dict[str, Any]) -> dict[str, Any]:
    """Give an authority a new key; its current key is retired from now (the platform)."""
    signer("keys.rotate")
    expires = instant(body.get("expires"))
    kid = door().write(lambda win: win.ledger.rotate_key(body["authority"], expires_at=expires))
    return {"authority": body["authority"], "kid": kid, "status": "rotated"}


@blp.route("/keys/<kid>/revocation", methods=["POST"])
@blp.arguments(KeyRevocationIn)
@blp.response(201, KeyOut)
@blp.doc(security=[{"bearer": []}])
def revoke(body: dict[str, Any], kid: str) -> dict[str, Any]:
    """Revoke a key: events it signs from then on fail verification (the platform)."""
    signer("keys.revoke")
    at = instant(body.get("at"))
    door().write(lambda win: win.ledger.revoke_key(kid, reason=body["reason"], revoked_at=at))
    return {"kid": kid, "status": "revoked"}


@blp.route("/policies", methods=["GET"])
@blp.response(200, description="The published policy versions")
def policies() -> dict[str, Any]:
    """The published catalogue, grading, measures and calendar versions, with their dates."""
    with door().window() as win:
        return {"policies": administration.policy_rows(win.ledger)}


@blp.route("/policies", methods=["POST"])
@blp.response(201, description="The version published")
@blp.doc(security=[{"bearer": []}], requestBody={
    "required": True, "description": "A policy document, as domain/policies/*.json",
    "content": {"application/json": {"schema": {"type": "object"}}}})
def publish() -> dict[str, Any]:
    """Publish a policy version (the credit office), signed by its key."""
    actor = signer("policy.publish").name
    document = request.get_json(silent=True)
    if not isinstance(document, dict):
        abort(422, "the body is a policy document (a JSON object)")
    version = run(lambda s: s.publish_policy(actor, document))
    return {"kind": version.kind, "version": version.policy_version, "status": "published"}
