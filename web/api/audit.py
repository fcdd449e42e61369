"""What auditors and anyone holding an old checkpoint ask: the signed checkpoints with
consistency proofs (public), and the query log (auditors and the credit office)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from web.api.caller import signer
from web.api.schemas import CheckpointsQuery, QueriesQuery
from web.api.subjects import instant, subject_key
from web.app import door
from workflows import administration

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


@blp.route("/checkpoints", methods=["POST"])
@blp.response(201, description="The new checkpoint: its size, root hash and signed note")
@blp.doc(security=[{"bearer": []}])
def sign_checkpoint() -> dict[str, Any]:
    """Sign a checkpoint of the whole log now (the platform), as `credit checkpoint` does."""
    signer("checkpoint.sign")
    checkpoint = door().write(lambda win: administration.sign_checkpoint(win.ledger))
    return {"tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash.hex(),
            "issued_at": checkpoint.issued_at.isoformat(), "kid": checkpoint.key_name,
            "note": checkpoint.note}


@blp.route("/queries", methods=["GET"])
@blp.arguments(QueriesQuery, location="query")
@blp.response(200, description="A JSON object (docs/CREDIT.md, FORMAT.md)")
@blp.doc(security=[{"bearer": []}])
def queries(query: dict[str, Any]) -> dict[str, Any]:
    """The query log: every read beyond the public file (who, whose, why, when, what)."""
    reader = signer("read.queries")
    subject = subject_key(query["subject"]) if query.get("subject") else None
    with door().window() as win:
        return {"queries": win.reads.queries(reader, subject, instant(query.get("since")))}
