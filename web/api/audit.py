"""What auditors and anyone holding an old checkpoint ask: the signed checkpoints with
consistency proofs (public), and the query log (auditors and the credit office)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from web.api.caller import caller
from web.api.schemas import CheckpointsQuery, QueriesQuery
from web.api.subjects import instant, subject_key
from web.app import door

blp = Blueprint("audit", __name__, url_prefix="/api",
                description="Checkpoints (anyone) and the query log (auditors, credit office)")


@blp.route("/checkpoints", methods=["GET"])
@blp.arguments(CheckpointsQuery, location="query")
@blp.response(200, description="A JSON object (docs/CREDIT.md, FORMAT.md)")
def checkpoints(query: dict[str, Any]) -> dict[str, Any]:
    """Signed checkpoints from number ``since`` (default: the latest ten), each with a
    consistency proof from the one before; each note checked against the pinned key."""
    with door().window() as win:
        return {"checkpoints": win.checkpoints(query.get("since"))}


@blp.route("/queries", methods=["GET"])
@blp.arguments(QueriesQuery, location="query")
@blp.response(200, description="A JSON object (docs/CREDIT.md, FORMAT.md)")
@blp.doc(security=[{"bearer": []}])
def queries(query: dict[str, Any]) -> dict[str, Any]:
    """The query log: every read beyond the public file (who, whose, why, when, what)."""
    reader = caller()
    subject = subject_key(query["subject"]) if query.get("subject") else None
    with door().window() as win:
        return {"queries": win.reads.queries(reader, subject, instant(query.get("since")))}
