"""Batch import of a department's records from JSON Lines or CSV (docs/IMPORT.md).

All or nothing, in two streaming passes:
1. validate every row (parse, identifiers, catalogue item and owner, dates, duplicates within the
   file and against the ledger, records to correct or revoke) and collect *every* bad row with its
   line number; any bad row refuses the file;
2. write the rows in batches inside **one** database transaction, so the file lands whole or not at
   all, with a checkpoint after each batch committed together at the end.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.base import DomainError, check_not_before, check_not_future
from domain.clock import parse_day
from domain.identifiers import InvalidIdentifier, SubjectRef, parse_subject
from domain.records import CreditRecord, check_changes, record_id, today_in_china
from domain.subjects import check_name, subject_id
from ledger.errors import LedgerError
from workflows.services import CreditServices, RecordSubmission

ACTIONS = ("submit", "correct", "revoke")
FIELDS = {
    "submit": {"action", "subject", "subject_name", "item_code", "decision_number",
               "decision_date", "summary", "details"},
    "correct": {"action", "record_id", "subject", "item_code", "decision_number", "reason",
                "changes", "on"},
    "revoke": {"action", "record_id", "subject", "item_code", "decision_number", "reason", "on"},
}
BATCH = 1000


class ImportRefused(LedgerError):
    """A file with bad rows: every one is listed, and nothing was written."""

    def __init__(self, path: Path, errors: list[RowError]) -> None:
        shown = "\n".join(f"{path}:{e.line}: {e.reason}" for e in errors[:200])
        more = f"\n… and {len(errors) - 200} more" if len(errors) > 200 else ""
        super().__init__(f"{path}: {len(errors)} bad row(s); nothing was written\n{shown}{more}")
        self.errors = errors


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class Row:
    line: int
    action: str
    data: dict[str, Any]


@dataclass
class ImportSummary:
    rows: int = 0
    submitted: int = 0
    corrected: int = 0
    revoked: int = 0
    subjects_registered: int = 0
    events: int = 0
    record_ids: list[str] = field(default_factory=list)


def file_format(path: Path, given: str | None = None) -> str:
    fmt = given or {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(path.suffix.lower())
    if fmt not in ("jsonl", "csv"):
        raise LedgerError(f"{path}: cannot tell the format; name the file .jsonl or .csv, "
                          "or give --format")
    return fmt


MAX_LINE_BYTES = 64 * 1024


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number: write amounts as decimal strings")
    return value


def parse_json(text: str) -> Any:
    """Strict JSON: no NaN or Infinity, no number beyond a float, no nesting Python cannot
    follow (refused as a ValueError, never a traceback)."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _lines(path: Path, errors: list[RowError]) -> Iterator[tuple[int, str]]:
    """The file's lines, decoded as UTF-8 (a BOM allowed) and bounded in length; a line that is
    not UTF-8 or too long is an error with its number, and not parsed."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if len(raw) > MAX_LINE_BYTES:
                errors.append(RowError(number, f"the line has {len(raw)} bytes; at most "
                                               f"{MAX_LINE_BYTES}"))
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                errors.append(RowError(number, f"not UTF-8 (byte {exc.start + 1} of the line): "
                                               "save the file as UTF-8 (from GBK, for instance)"))


def read_rows(path: Path, fmt: str, errors: list[RowError]) -> Iterator[Row]:
    """Rows with their line numbers; rows that cannot be read or parsed go to ``errors``."""
    if fmt == "jsonl":
        for line, text in _lines(path, errors):
            if not text.strip():
                continue
            try:
                data = parse_json(text)
            except ValueError as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                errors.append(RowError(line, f"not JSON: {reason}"))
                continue
            row = _row(line, data, errors)
            if row is not None:
                yield row
        return
    current = [0]  # the physical line the CSV reader has read up to (a cell may span lines)

    def texts() -> Iterator[str]:
        for number, text in _lines(path, errors):
            current[0] = number
            yield text

    for data in csv.DictReader(texts()):
        row = _row(current[0], _from_csv(current[0], data, errors), errors)
        if row is not None:
            yield row


def _from_csv(line: int, raw: dict[str, Any], errors: list[RowError]) -> dict[str, Any] | None:
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if key is None:
            errors.append(RowError(line, "more cells than the header has columns"))
            return None
        if value is None or value == "":
            continue
        if key in ("details", "changes"):
            try:
                data[key] = parse_json(value)
            except ValueError:
                errors.append(RowError(line, f"{key} is not a JSON object"))
                return None
        elif key.startswith("details."):
            data.setdefault("details", {})[key[len("details."):]] = value
        elif key.startswith("set."):
            data.setdefault("changes", {})[key[len("set."):]] = value
        else:
            data[key] = value
    return data


def _row(line: int, data: Any, errors: list[RowError]) -> Row | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        errors.append(RowError(line, "a row is a JSON object"))
        return None
    action = data.get("action") or "submit"
    if action not in ACTIONS:
        errors.append(RowError(line, f"action {action!r} is not one of {', '.join(ACTIONS)}"))
        return None
    unknown = sorted(set(data) - FIELDS[action])
    if unknown:
        errors.append(RowError(line, f"unknown field(s) for {action}: {', '.join(unknown)}"))
        return None
    return Row(line, action, data)


class Importer:
    """Imports one file as one authority."""

    def __init__(self, services: CreditServices, actor: str) -> None:
        self.services = services
        self.ledger = services.ledger
        self.actor = actor
        self.today = today_in_china()

    # -- building what a row asks for (both passes) -----------------------------------------

    def _text(self, row: Row, name: str) -> str:
        value = row.data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise LedgerError(f"{name} is missing or empty")
        return value

    def _subject(self, row: Row) -> SubjectRef:
        return parse_subject(self._text(row, "subject"), today=self.today)

    def _date(self, row: Row, name: str) -> date:
        text = self._text(row, name)
        try:
            return parse_day(text)
        except ValueError:
            raise LedgerError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None

    def act_day(self, row: Row) -> date | None:
        """A correction's or revocation's own date (``on``; default today), never after today."""
        if row.data.get("on") in (None, ""):
            return None
        day = self._date(row, "on")
        check_not_future("on", day)
        return day

    def submission(self, row: Row) -> RecordSubmission:
        details = row.data.get("details")
        if details is not None and not isinstance(details, dict):
            raise LedgerError("details must be an object")
        name = row.data.get("subject_name")
        if isinstance(name, str) and name.strip():
            check_name(name)  # refused here, with its line, not when the batch is written
        return RecordSubmission(
            actor=self.actor, subject=self._subject(row), item_code=self._text(row, "item_code"),
            decision_number=self._text(row, "decision_number"),
            decision_date=self._date(row, "decision_date"), summary=self._text(row, "summary"),
            details=details, subject_name=name if isinstance(name, str) and name.strip() else None)

    def changes(self, row: Row) -> dict[str, Any]:
        changes = row.data.get("changes")
        if not isinstance(changes, dict):
            raise LedgerError("changes must be an object of corrected fields")
        changes = dict(changes)
        if isinstance(changes.get("decision_date"), str):
            text = changes["decision_date"]
            try:
                changes["decision_date"] = parse_day(text)
            except ValueError:
                raise LedgerError(f"changes.decision_date {text!r} is not a date") from None
        return changes

    def target(self, row: Row) -> UUID:
        if row.data.get("record_id"):
            try:
                return UUID(str(row.data["record_id"]))
            except ValueError:
                raise LedgerError(f"record_id {row.data['record_id']!r} is not an id") from None
        return record_id(department=self.actor, item_code=self._text(row, "item_code"),
                         decision_number=self._text(row, "decision_number"),
                         subject_key=self._subject(row).key)

    # -- pass 1 ------------------------------------------------------------------------------

    def validate(self, path: Path, fmt: str) -> int:
        """Check every row; raise ImportRefused listing every bad one. Returns the row count."""
        self.services.permit("record.submit", self.actor)
        errors: list[RowError] = []
        seen_records: dict[UUID, int] = {}
        decided: dict[UUID, date] = {}  # decision dates of the records the file submits
        named_subjects: set[UUID] = set()
        pending: list[tuple[int, UUID, SubjectRef, bool]] = []  # line, record, subject, named
        targets: list[tuple[Row, UUID]] = []
        count = 0
        for row in read_rows(path, fmt, errors):
            count += 1
            try:
                if row.action == "submit":
                    submission = self.submission(row)
                    event = CreditRecord.submission(
                        actor=self.actor, subject=submission.subject,
                        item_code=submission.item_code,
                        decision_number=submission.decision_number,
                        decision_date=submission.decision_date, summary=submission.summary,
                        details=submission.details,
                        catalogue=self.services.catalogue(submission.decision_date))
                    rid = event.originator_id
                    if rid in seen_records:
                        raise LedgerError(f"the same record as line {seen_records[rid]}")
                    seen_records[rid] = row.line
                    decided[rid] = submission.decision_date
                    sid = subject_id(submission.subject.key)
                    if submission.subject_name:
                        named_subjects.add(sid)
                    pending.append((row.line, rid, submission.subject,
                                    sid in named_subjects))
                else:
                    rid = self.target(row)
                    targets.append((row, rid))
                    self._text(row, "reason")
                    on = self.act_day(row)
                    if on is not None and rid in decided:
                        check_not_before("on", on, "the record's decision date", decided[rid])
                    if row.action == "correct":
                        check_changes(self.changes(row))
            except (DomainError, LedgerError, InvalidIdentifier, LookupError) as exc:
                errors.append(RowError(row.line, _reason(exc)))
        errors += self._check_against_ledger(pending, targets, seen_records)
        if errors:
            raise ImportRefused(path, sorted(errors, key=lambda e: e.line))
        return count

    def _check_against_ledger(self, pending: list[tuple[int, UUID, SubjectRef, bool]],
                              targets: list[tuple[Row, UUID]],
                              in_file: dict[UUID, int]) -> list[RowError]:
        errors: list[RowError] = []
        for start in range(0, len(pending), BATCH):
            chunk = pending[start:start + BATCH]
            stored = self.ledger.existing(rid for _, rid, _, _ in chunk)
            subjects = self.ledger.existing(subject_id(ref.key) for _, _, ref, _ in chunk)
            for line, rid, ref, named in chunk:
                if rid in stored:
                    errors.append(RowError(line, "this record is already in the ledger"))
                elif subject_id(ref.key) not in subjects and not named:
                    errors.append(RowError(
                        line, f"subject {ref.masked()} is not registered: give subject_name"))
        for row, rid in targets:
            try:
                if rid in in_file and in_file[rid] > row.line:
                    raise LedgerError(f"the record is submitted later in the file "
                                      f"(line {in_file[rid]})")
                if rid not in in_file:
                    record = self.services.record(rid)
                    if record.department != self.actor:
                        raise LedgerError(f"record {rid} belongs to {record.department!r}")
                    if record.revoked:
                        raise LedgerError(f"record {rid} is revoked")
                    on = self.act_day(row)
                    if on is not None:
                        check_not_before("on", on, "the record's decision date",
                                         record.decision_date)
            except (DomainError, LedgerError) as exc:
                errors.append(RowError(row.line, _reason(exc)))
        return errors

    # -- pass 2 ------------------------------------------------------------------------------

    def write(self, path: Path, fmt: str,
              progress: Callable[[int], None] | None = None) -> ImportSummary:
        """Write every row, in batches, in one transaction: runs of submissions in batches
        (each signed while the one before is written), each correction or revocation after
        the rows before it."""
        summary = ImportSummary()
        errors: list[RowError] = []
        with self.ledger.recorder.bulk():
            rows = read_rows(path, fmt, errors)
            change: list[Row] = []  # the row that ended a run of submissions

            def submissions() -> Iterator[list[RecordSubmission]]:
                batch: list[RecordSubmission] = []
                for row in rows:
                    summary.rows += 1
                    if progress is not None:
                        progress(summary.rows)
                    if row.action != "submit":
                        change.append(row)
                        break
                    batch.append(self.submission(row))
                    if len(batch) >= BATCH:
                        yield batch
                        batch = []
                if batch:
                    yield batch

            while True:
                for written in self.services.submit_record_batches(submissions()):
                    summary.submitted += len(written.record_ids)
                    summary.subjects_registered += written.subjects_registered
                    summary.record_ids.extend(
                        str(i) for i in written.record_ids[:1000 - len(summary.record_ids)])
                if not change:
                    break
                self._change(change.pop(), summary)
            if errors:  # the file changed between the passes
                raise ImportRefused(path, errors)
        # this import's own events (others may write meanwhile): one per row, one per new subject
        summary.events = (summary.submitted + summary.corrected + summary.revoked
                          + summary.subjects_registered)
        return summary

    def _change(self, row: Row, summary: ImportSummary) -> None:
        rid = self.target(row)
        reason = self._text(row, "reason")
        if row.action == "correct":
            self.services.correct_record(rid, actor=self.actor, reason=reason,
                                         changes=self.changes(row), corrected_on=self.act_day(row))
            summary.corrected += 1
        else:
            self.services.revoke_record(rid, actor=self.actor, reason=reason,
                                        revoked_on=self.act_day(row))
            summary.revoked += 1

    def run(self, path: Path, fmt: str | None = None,
            progress: Callable[[int], None] | None = None) -> ImportSummary:
        chosen = file_format(path, fmt)
        self.validate(path, chosen)
        return self.write(path, chosen, progress)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidIdentifier):
        return f"subject {exc.value!r} is not valid: {exc.reason}"
    return str(exc)
