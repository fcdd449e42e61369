"""What the 信用临安 window shows: the public's reads, through the same ``Reads`` as the CLI.

The window reads as ``public``: an enterprise's public file (never a natural person's), a
record's signed events and their place in the log, the grade over time, the signed report of a
file that is wholly public, the verdict of the court's verifier on an uploaded extract, and the
latest signed checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select

from domain import clock
from domain.base import DomainError
from domain.disclosure import NotPublic, is_person, public_view, wholly_public
from domain.history import effective_day
from domain.identifiers import mask_subject_key
from domain.state import Fact, objections_on, states_on
from keys.signer import fingerprint, public_key_from_pem
from keys.store import PINNED_FILE
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from proofs import merkle
from proofs.checkpoint import Checkpoint, parse_checkpoint
from workflows.extracts import Extract, checkpoint_listing, log_nodes, verify_extract_file
from workflows.reads import Reads
from workflows.services import CreditServices

TIMELINE_POINTS = 40  # the chart's most recent change days
TIMELINE_CACHE = 2048  # subjects whose timeline a process keeps
_TIMELINES: dict[tuple[str, int, int, date], list[dict[str, Any]]] = {}


class NotShown(DomainError):
    """What the window does not show: no such subject or record, or not public (a natural
    person's file). The message never carries the key asked for."""

    def __init__(self) -> None:
        super().__init__("not found")


@dataclass(frozen=True)
class Report:
    """An issued report: the signed extract file and what identifies it on paper."""

    number: str
    file: bytes
    sha256: str


class Window:
    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger
        self.services = CreditServices(ledger)
        self.reads = Reads(self.services)
        self.public = self.reads.reader(None)

    # -- finding and reading a file ------------------------------------------------------------

    def search(self, query: str,
               search: Callable[[str, bool], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        if not query.strip():
            return []
        return self.reads.lookup(self.public, query, None, search)

    def _facts(self, subject: str) -> list[Fact]:
        if is_person(subject):
            raise NotShown
        facts = self.ledger.facts_about(subject)
        if not facts:
            raise NotShown
        return facts

    def subject(self, subject: str, as_of: date | None = None) -> dict[str, Any]:
        """The public file on ``as_of`` (default today), with the grade over time, and — on
        today's file, where a report is issued — whether the file is wholly public (None on a
        past day: a report is always of the file as it is now)."""
        facts = self._facts(subject)
        day = as_of or clock.today_in_china()
        self.ledger.refresh()
        now = clock.now()
        (whole,) = states_on(subject, facts, self.ledger.policy_facts, [day], now)
        try:
            state = public_view(whole)
        except NotPublic:
            raise NotShown from None
        today = day == clock.today_in_china()
        return {**state, "timeline": self._timeline(subject, facts, now),
                "wholly_public": wholly_public(whole) if today else None}

    def _timeline(self, subject: str, facts: list[Fact], now: datetime) -> list[dict[str, Any]]:
        """The grade on each day something took effect (the latest ``TIMELINE_POINTS``), and
        today, as known now: the steps a chart draws. One replay of the events for all days;
        kept while no event about the subject or policy is added and the day is the same."""
        today = clock.today_in_china()
        key = (subject, facts[-1].position, len(self.ledger.policy_facts), today)
        found = _TIMELINES.get(key)
        if found is not None:
            return found
        days = sorted({effective_day(f) for f in facts if effective_day(f) <= today} | {today})
        days = days[-TIMELINE_POINTS:]
        states = states_on(subject, facts, self.ledger.policy_facts, days, now)
        points = [{"day": day.isoformat(), "grade": state["grade"]["grade"],
                   "points": state["grade"]["points"], "policy": state["grade"]["policy"]}
                  for day, state in zip(days, states, strict=True)]
        if len(_TIMELINES) >= TIMELINE_CACHE:
            _TIMELINES.pop(next(iter(_TIMELINES)))  # the oldest first
        _TIMELINES[key] = points
        return points

    # -- a record and its signed events -------------------------------------------------------

    def record(self, record_id: UUID) -> dict[str, Any]:
        """A public record, its signed events in log order with their authority, key, time and
        log index, and each event's inclusion in the latest checkpoint, checked here."""
        try:
            subject = self.services.record(record_id).subject
        except (LedgerError, DomainError):
            raise NotShown from None
        state = self.subject(subject)
        shown = [r for r in state["records"] if r["id"] == str(record_id)]
        if not shown:
            raise NotShown  # not (or no longer) public
        facts = [f for f in self.ledger.facts_about(subject) if f.aggregate_id == str(record_id)]
        checkpoint, included = self._inclusion([f.position for f in facts])
        events = [{"position": f.position, "event": f.kind, "version": f.version,
                   "authority": f.actor, "kid": f.kid, "recorded_at": f.recorded_at,
                   "effective_on": effective_day(f).isoformat(),
                   "included": included.get(f.position)} for f in facts]
        return {"subject": subject, "name": state["name"], "record": shown[0], "events": events,
                "checkpoint": None if checkpoint is None else {
                    "tree_size": checkpoint.tree_size, "issued_at": checkpoint.issued_at,
                    "root": checkpoint.root_hash.hex(), "key": checkpoint.key_name}}

    def _inclusion(self, positions: list[int]) -> tuple[Checkpoint | None, dict[int, int]]:
        """The latest checkpoint, and for each position under it the length of its inclusion
        proof, checked against the checkpoint's root (ProofError if one fails)."""
        c, log = tables.checkpoints, tables.log
        with self.ledger.reading() as session:
            note = session.execute(select(c.c.note).order_by(c.c.seq.desc()).limit(1)).scalar()
            if note is None:
                return None, {}
            checkpoint = parse_checkpoint(note)
            under = [p for p in positions if p < checkpoint.tree_size]
            proofs = merkle.inclusion_proofs(under, checkpoint.tree_size,
                                             lambda wanted: log_nodes(session, wanted))
            leaves = dict(session.execute(select(log.c.position, log.c.leaf_hash)
                                          .where(log.c.position.in_(under))).all())
        for position in under:
            merkle.verify_inclusion(position, checkpoint.tree_size, bytes(leaves[position]),
                                    proofs[position], checkpoint.root_hash)
        return checkpoint, {p: len(proofs[p]) for p in under}

    # -- the credit report ---------------------------------------------------------------------

    def issue_report(self, subject: str) -> Report:
        """The signed extract of a file the public may see whole (logged as a public read)."""
        self._facts(subject)  # a file the window shows
        issued: Extract = self.reads.extract(self.public, subject, None, None)
        data = issued.to_json().encode("utf-8")
        return Report(issued.number, data, hashlib.sha256(data).hexdigest())

    # -- the credit office's desk --------------------------------------------------------------

    def objection_queue(self) -> list[dict[str, Any]]:
        """Objections not yet ruled (raised, accepted, extended), oldest first: what the office
        works on. Subjects masked: the desk shows a person's file only by number."""
        views = objections_on(self.ledger.stream_facts("Objection"), clock.today_in_china(),
                              clock.now())
        return [{**v, "subject": mask_subject_key(v["subject"])} for v in views
                if v["status"] in ("raised", "accepted", "extended")]

    # -- checking, and what anyone can check against --------------------------------------------

    def trusted_key_file(self) -> Path:
        return self.ledger.settings.keys_dir / PINNED_FILE

    def trusted_key(self) -> dict[str, str]:
        pem = self.trusted_key_file().read_bytes()
        return {"pem": pem.decode("ascii"),
                "fingerprint": fingerprint(public_key_from_pem(pem))}

    def checkpoints(self, since: int | None = None) -> list[dict[str, Any]]:
        """Signed checkpoints from number ``since`` (default: the latest ten) with their
        consistency proofs, each note checked against the pinned platform key."""
        return checkpoint_listing(self.ledger, since,
                                  [public_key_from_pem(self.trusted_key_file().read_bytes())])

    def verify(self, file: Path) -> tuple[bool, dict[str, Any]]:
        """The court's verifier on ``file``, trusting the platform key pinned at `credit init`."""
        valid, data, _ = verify_extract_file(file, self.trusted_key_file())
        return valid, data

