"""What anyone checking the ledger needs, and the credit office's policies: the key registry
(public: every authority's keys with their validity and fingerprints) and the policy versions
(listed by anyone, published by the credit office, signed by its key). Keys are generated,
rotated and revoked on the platform's own server (`credit keys`), not over the network."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from flask_smorest import Blueprint

from web.api.caller import signer
from web.api.cases import run
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
