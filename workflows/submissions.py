"""What a department sends over HTTP, written exactly as `credit import` writes a file: the
body becomes a batch file and the same ``Importer`` checks every row, then writes all of it
in one transaction or nothing. One record, a correction, a revocation, or a whole batch."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.application import CreditLedger
from workflows.importer import Importer, ImportRefused, ImportSummary, RowError
from workflows.services import CreditServices

__all__ = ["ImportRefused", "ImportSummary", "RowError", "as_lines", "submit_batch",
           "submit_rows"]


def as_lines(rows: list[dict[str, Any]]) -> bytes:
    """Rows as a JSON Lines file: row N of the list is line N."""
    return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n"
                   for row in rows).encode("utf-8")


def submit_batch(ledger: CreditLedger, actor: str, body: bytes, fmt: str) -> ImportSummary:
    """A batch file's bytes (``jsonl`` or ``csv``), imported as ``actor``: all or nothing;
    ImportRefused lists every bad row by line."""
    with tempfile.TemporaryDirectory(prefix="credit-batch-") as folder:
        path = Path(folder) / f"batch.{fmt}"
        path.write_bytes(body)
        return Importer(CreditServices(ledger), actor).run(path, fmt)


def submit_rows(ledger: CreditLedger, actor: str, rows: list[dict[str, Any]]) -> ImportSummary:
    return submit_batch(ledger, actor, as_lines(rows), "jsonl")


def correction(record_id: UUID, reason: str, changes: dict[str, Any],
               on: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"action": "correct", "record_id": str(record_id), "reason": reason,
                           "changes": changes}
    if on:
        row["on"] = on
    return row


def revocation(record_id: UUID, reason: str, on: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"action": "revoke", "record_id": str(record_id), "reason": reason}
    if on:
        row["on"] = on
    return row
