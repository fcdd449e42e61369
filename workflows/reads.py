"""Reads, by who is asking: the role matrix decides, the disclosure rules filter, and every read
of what is not public is written to the query log before it is answered.

A reader is named as ``--as`` names it (docs/PERMISSIONS.md): ``public`` (the default); a
registered authority's code (``tax``, ``credit-office``: its kind is its role); ``auditor``,
``court`` or ``agency``, optionally with a name (``court:临安区人民法院``); or
``subject:KEY`` for a subject reading its own file. Until the HTTP API authenticates callers
(tokens), the CLI takes the name as given: it runs on the platform's own server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from domain import clock
from domain.authorities import PLATFORM
from domain.disclosure import (
    PUBLIC,
    NotPublic,
    NotWhollyPublic,
    full_view,
    is_person,
    public_view,
    returned_summary,
    wholly_public,
)
from domain.identifiers import SubjectRef, parse_subject
from domain.permissions import SIGNING_ROLES, check_permitted
from domain.queries import Query
from domain.state import Fact
from workflows.extracts import Extract, ExtractIssuer
from workflows.services import CreditServices

READER_ROLES = ("auditor", "court", "agency")
PUBLIC_REPORT = "信用报告 (the public report of a wholly public file)"
PUBLIC_LOOKUP = ("subject", "kind", "name", "grade", "points", "black_listed", "red_listed",
                 "public_records")


@dataclass(frozen=True)
class Reader:
    name: str  # as given: "public", "tax", "auditor:张三", "subject:uscc:…"
    role: str
    subject: str | None = None  # whose file a subject reader is

    @property
    def signer(self) -> str:
        """Who signs the log of this reader's queries: its own authority, else the platform."""
        return self.name if self.role in SIGNING_ROLES else PLATFORM


class Reads:
    def __init__(self, services: CreditServices) -> None:
        self.services = services
        self.ledger = services.ledger

    def reader(self, text: str | None) -> Reader:
        name = (text or PUBLIC).strip()
        role, _, rest = name.partition(":")
        if name == PUBLIC:
            return Reader(name, PUBLIC)
        if role == "subject" and rest:
            return Reader(name, "subject", parse_subject(rest, today=clock.today_in_china()).key)
        if role in READER_ROLES:
            return Reader(name, role)
        return Reader(name, self.ledger.role_of(name))

    # -- a subject's file ----------------------------------------------------------------------

    def _permit_file(self, reader: Reader, subject: str, known_at: datetime | None) -> bool:
        """Whether the reader sees the whole file (else the public part); raises NotPermitted."""
        if known_at is not None:
            check_permitted("read.known_at", reader.name, reader.role)
        if reader.role == PUBLIC:
            check_permitted("read.public", reader.name, reader.role)
            return False
        if reader.role == "subject":
            if reader.subject != subject:
                check_permitted("read.file", reader.name, reader.role)  # refused
            check_permitted("read.own", reader.name, reader.role)
            return True
        if reader.role == "platform":
            check_permitted("read.public", reader.name, reader.role)
            return False
        check_permitted("read.file", reader.name, reader.role)
        return True

    def state(self, reader: Reader, subject: str, as_of: date | None = None,
              known_at: datetime | None = None, purpose: str | None = None) -> dict[str, Any]:
        """``credit history``: the file on a day as the reader may see it."""
        whole = self._permit_file(reader, subject, known_at)
        state = self.services.state(subject, as_of, known_at)
        if not whole:
            return public_view(state)
        self._log(reader, "read.file", subject, purpose, returned_summary(state))
        return full_view(state)

    def diff(self, reader: Reader, subject: str, start: date, end: date,
             known_at: datetime | None = None, purpose: str | None = None) -> dict[str, Any]:
        """``credit diff``: what changed, with the events that changed it, as the reader may
        see it (the public: changes to the public file only)."""
        whole = self._permit_file(reader, subject, known_at)
        result = self.services.diff(subject, start, end, known_at)
        if whole:
            self._log(reader, "read.file", subject, purpose,
                      f"diff {start.isoformat()} to {end.isoformat()}: "
                      f"{len(result['changes'])} changes, {len(result['events'])} events")
            return result
        before, after = public_view(result["before"]), public_view(result["after"])
        public_ids = {r["id"] for r in before["records"]} | {r["id"] for r in after["records"]}
        shown = {None, *public_ids, *(x["id"] for x in after["listings"]),
                 *(c["id"] for c in after["commitments"])}
        return {**result, "before": before, "after": after,
                "changes": [c for c in result["changes"] if c["id"] in shown],
                "events": [], "view": PUBLIC}

    # -- finding a subject -----------------------------------------------------------------------

    def lookup(self, reader: Reader, query: str, purpose: str | None,
               search: Callable[[str, bool], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """``credit lookup``: enterprises by name, partial name or full code, for anyone; a
        natural person only by the full ID number, for an authorised reader stating a purpose
        (logged). ``search(text, people)`` is the read-model query."""
        person = _full_person_id(query)
        if person is None:
            check_permitted("read.public", reader.name, reader.role)
            found = search(query, False)
            if reader.role in ("public", "subject", "platform"):
                # the public window: what the public file shows, no count of what it does not
                return [{k: v for k, v in row.items() if k in PUBLIC_LOOKUP} for row in found]
            return found
        check_permitted("read.file", reader.name, reader.role)
        found = search(person.key, True)
        self._log(reader, "read.file", person.key, purpose,
                  f"lookup by full ID number: {len(found)} subject(s)")
        return found

    # -- extracts and the query log ----------------------------------------------------------------

    def extract(self, reader: Reader, subject: str, as_of: datetime | None,
                purpose: str | None) -> Extract:
        if reader.role == "subject" and reader.subject != subject:
            check_permitted("read.file", reader.name, reader.role)  # refused
        if reader.role == PUBLIC:
            check_permitted("extract.public", reader.name, reader.role)
            if is_person(subject):
                raise NotPublic(subject)
            if not wholly_public(self.services.state(subject)):
                raise NotWhollyPublic
            purpose = purpose or PUBLIC_REPORT
        else:
            check_permitted("extract.issue", reader.name, reader.role)
        issued = ExtractIssuer(self.ledger).issue(subject, as_of)
        self._log(reader, "extract.issue", subject, purpose,
                  f"extract {issued.number} as of {issued.payload['as_of']}")
        return issued

    def queries(self, reader: Reader, subject: str | None = None,
                since: datetime | None = None) -> list[dict[str, Any]]:
        """``credit queries``: the logged reads (of one subject, since a time), oldest first."""
        check_permitted("read.queries", reader.name, reader.role)
        facts: Sequence[Fact] = self.ledger.stream_facts("Query")
        return [{"notification_id": f.notification_id, "at": f.recorded_at.isoformat(),
                 "reader": f.data["reader"], "role": f.data["role"],
                 "command": f.data["command"], "subject": f.data["about"],
                 "purpose": f.data["purpose"], "returned": f.data["returned"],
                 "signed_by": f.kid}
                for f in facts if f.kind == "Query.Logged"
                and (subject is None or f.data["about"] == subject)
                and (since is None or f.recorded_at >= since)]

    def _log(self, reader: Reader, command: str, about: str | None, purpose: str | None,
             returned: str) -> None:
        """Write the read to the query log (signed, in the ledger) before it is answered."""
        if reader.role == "subject" and reader.subject == about and not purpose:
            purpose = "the subject reads its own file"
        self.ledger.save(Query.log(actor=reader.signer, reader=reader.name, role=reader.role,
                                   command=command, about=about, purpose=purpose,
                                   returned=returned))


def _full_person_id(text: str) -> SubjectRef | None:
    """The text as a complete, valid resident ID number, or None."""
    candidate = text.strip()
    if candidate.startswith("uscc:"):
        return None
    body = candidate.removeprefix("rid:")
    if len(body) != 18:
        return None
    try:
        ref = parse_subject(f"rid:{body}", today=clock.today_in_china())
    except ValueError:
        return None
    return ref if is_person(ref.key) else None
