"""Records over HTTP: submit one, a batch (JSON Lines, CSV or a JSON array), correct, revoke.
Each is an import of the same rows `credit import` takes (workflows/submissions.py): checked
whole, then written in one transaction, signed by the calling department's key."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from uuid import UUID

from flask import abort, request
from flask_smorest import Blueprint

from web.api.caller import signer
from web.api.schemas import CorrectionIn, RecordIn, RevocationIn, Written
from web.app import door
from workflows import submissions
from workflows.importer import ImportSummary

blp = Blueprint("records", __name__, url_prefix="/api/records",
                description="Credit records: submit, batch, correct, revoke (departments and "
                            "the credit office; a department touches only its own records)")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
BATCH_TYPES = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
               "application/json": "json", "text/csv": "csv"}


def _write(command: str, batch: bytes, fmt: str = "jsonl") -> dict[str, Any]:
    """Import ``batch`` as the calling authority, then bring the read models up."""
    actor = signer(command).name
    summary: ImportSummary = door().write(
        lambda win: submissions.submit_batch(win.ledger, actor, batch, fmt))
    return asdict(summary)


@blp.route("", methods=["POST"])
@blp.arguments(RecordIn)
@blp.response(201, Written)
@blp.doc(security=SECURITY)
def submit(record: dict[str, Any]) -> dict[str, Any]:
    """Submit one record, signed by the calling department's key."""
    return _write("record.submit", submissions.as_lines([record]))


@blp.route("/batch", methods=["POST"])
@blp.response(201, Written)
@blp.doc(security=SECURITY, requestBody={
    "required": True, "description": "Rows as docs/IMPORT.md describes them (submit, correct, "
    "revoke): JSON Lines, CSV, or a JSON array of row objects. All or nothing.",
    "content": {kind: {"schema": {"type": "string"} if fmt != "json" else
                       {"type": "array", "items": {"type": "object"}}}
                for kind, fmt in BATCH_TYPES.items()}})
def batch() -> dict[str, Any]:
    """A department's batch, exactly as `credit import` takes a file; every bad row is listed
    by line and nothing is written."""
    kind = (request.mimetype or "").lower()
    fmt = BATCH_TYPES.get(kind)
    if fmt is None:
        abort(415, f"send JSON Lines, CSV or a JSON array (one of {', '.join(BATCH_TYPES)})")
    body = request.get_data(cache=False)
    if fmt == "json":
        try:
            rows = json.loads(body)
        except ValueError:
            abort(422, "the body is not JSON")
        if not isinstance(rows, list):
            abort(422, "the body is a JSON array of row objects")
        return _write("record.submit", submissions.as_lines(rows))
    return _write("record.submit", body, fmt)


@blp.route("/<uuid:record_id>/correction", methods=["POST"])
@blp.arguments(CorrectionIn)
@blp.response(201, Written)
@blp.doc(security=SECURITY)
def correct(change: dict[str, Any], record_id: UUID) -> dict[str, Any]:
    """Correct or complete one's own record (a new signed event; nothing is rewritten)."""
    row = submissions.correction(record_id, change["reason"], change["changes"], change.get("on"))
    return _write("record.correct", submissions.as_lines([row]))


@blp.route("/<uuid:record_id>/revocation", methods=["POST"])
@blp.arguments(RevocationIn)
@blp.response(201, Written)
@blp.doc(security=SECURITY)
def revoke(change: dict[str, Any], record_id: UUID) -> dict[str, Any]:
    """Revoke one's own record."""
    row = submissions.revocation(record_id, change["reason"], change.get("on"))
    return _write("record.revoke", submissions.as_lines([row]))
