"""The credit check (信用核查, domain/checks.py): answered from the subject's state now, recorded
as a signed event, and returned with a receipt the platform signs — a JWS that the extract
verifier checks offline (FORMAT.md §10): its checkpoint, and the recorded check under it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from domain import clock
from domain.checks import CreditCheck, answer
from domain.permissions import check_permitted
from domain.policies import MeasuresPolicy
from ledger import tables
from ledger.application import CreditLedger
from proofs import jws, merkle
from proofs.envelope import format_instant
from proofs.verify_receipt import RECEIPT_MEDIA_TYPE, RECEIPT_TYPE
from workflows.extracts import ExtractIssuer, log_nodes
from workflows.reads import Reader
from workflows.services import CreditServices


@dataclass(frozen=True)
class Receipt:
    document: dict[str, str]
    payload: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.document, ensure_ascii=False, indent=2) + "\n"


class CreditChecks:
    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger
        self.services = CreditServices(ledger)

    def check(self, reader: Reader, subject: str, matter: str, case_number: str) -> Receipt:
        """Check ``subject`` for ``matter`` in ``case_number`` as ``reader``; record it; sign
        the receipt."""
        check_permitted("check.make", reader.name, reader.role)
        today = clock.today_in_china()
        state = self.services.state(subject)
        measures = self.ledger.policies.in_force("measures", today)
        told = answer(state, matter, measures if isinstance(measures, MeasuresPolicy) else None,
                      today)
        told["known"] = state["kind"] is not None  # a subject the ledger has never heard of
        made = CreditCheck.make(actor=reader.signer, checker=reader.name, role=reader.role,
                                about=subject, matter=matter, case_number=case_number,
                                answer=told)
        self.ledger.save(made)
        return self._receipt(made)

    def _receipt(self, made: CreditCheck) -> Receipt:
        ledger = self.ledger
        issuer = ExtractIssuer(ledger)
        log, events = tables.log, ledger.recorder.events_table
        with ledger.recorder.locked() as tx:
            checkpoint = issuer.anchor(tx, made.created_on)  # the one its commit signed
            row = tx.execute(
                select(log.c.position, events.c.id, events.c.originator_id,
                       events.c.originator_version, events.c.topic, events.c.state,
                       log.c.leaf_hash)
                .join(events, events.c.id == log.c.notification_id)
                .where(events.c.originator_id == made.id)).one()
            proofs = merkle.inclusion_proofs([row[0]], checkpoint.tree_size,
                                             lambda wanted: log_nodes(tx, wanted))
        issued = clock.now()
        payload = {
            "type": RECEIPT_TYPE, "number": made.id.hex, "subject": made.about,
            "matter": made.matter, "case_number": made.case_number,
            "checked_by": made.checker, "role": made.role,
            "checked_at": format_instant(made.created_on), "issued_at": format_instant(issued),
            "answer": made.answer, "checkpoint": checkpoint.note,
            "events": [issuer.event(row, proofs[row[0]])],
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        platform_key, signer = ledger.platform_signer(issued)
        document = jws.sign(body, {"alg": jws.WRITTEN_ALGORITHM, "kid": platform_key.kid,
                                   "typ": RECEIPT_MEDIA_TYPE}, signer.sign)
        return Receipt(document, payload)

    def checks_of(self, subject: str | None = None) -> list[dict[str, Any]]:
        """Recorded checks (of one subject), oldest first: who, for what, what they were told."""
        return [{"number": f.aggregate_id.replace("-", ""), "at": f.recorded_at.isoformat(),
                 "checked_by": f.data["checker"], "role": f.data["role"],
                 "subject": f.data["about"], "matter": f.data["matter"],
                 "case_number": f.data["case_number"], "answer": f.data["answer"],
                 "signed_by": f.kid}
                for f in self.ledger.stream_facts(CreditCheck.__name__)
                if subject is None or f.data["about"] == subject]
