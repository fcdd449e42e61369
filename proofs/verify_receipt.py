"""Checking a credit-check receipt (信用核查回执) offline: the platform signed it, its checkpoint
is signed by the same trusted key, and the check it reports is in the log that checkpoint
commits to, saying exactly what the receipt says (docs/FORMAT.md §10).

Standard library and ``cryptography`` only, as the extract verifier it is packed with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proofs import envelope, jws
from proofs.checkpoint import Checkpoint
from proofs.checks import trusted_key, verify_checkpoint
from proofs.failures import CheckpointInvalid, MalformedPayload, StateMismatch

RECEIPT_TYPE = "credit-ledger/check-receipt/v1"
RECEIPT_MEDIA_TYPE = "credit-check-receipt+json"
CHECK_KIND = "CreditCheck.Made"
# what the receipt says, and the field of the recorded event that must say the same
_SAME = {"subject": "about", "matter": "matter", "case_number": "case_number",
         "checked_by": "checker", "answer": "answer"}
_FIELDS: dict[str, type] = {"type": str, "number": str, "subject": str, "matter": str,
                            "case_number": str, "checked_by": str, "checked_at": str,
                            "issued_at": str, "answer": dict, "checkpoint": str, "events": list}


@dataclass
class VerifiedReceipt:
    payload: dict[str, Any]
    checkpoint: Checkpoint
    position: int

    def summary(self) -> dict[str, Any]:
        p = self.payload
        return {"valid": True, "kind": "check-receipt", "number": p["number"],
                "subject": p["subject"], "matter": p["matter"], "case_number": p["case_number"],
                "checked_by": p["checked_by"], "checked_at": p["checked_at"],
                "barred": p["answer"].get("barred"), "lists": p["answer"].get("lists"),
                "grade": p["answer"].get("grade"), "log_position": self.position,
                "checkpoint": {"tree_size": self.checkpoint.tree_size,
                               "issued_at": envelope.format_instant(self.checkpoint.issued_at),
                               "key": self.checkpoint.key_name}}


def is_receipt(signed: jws.SignedDocument) -> bool:
    return signed.header.get("typ") == RECEIPT_MEDIA_TYPE


def read_receipt(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedPayload("the signed payload is not JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != RECEIPT_TYPE:
        raise MalformedPayload(f"the payload is not a {RECEIPT_TYPE}")
    for name, kind in _FIELDS.items():
        if not isinstance(payload.get(name), kind):
            raise MalformedPayload(f"the receipt's {name!r} is missing or not a {kind.__name__}")
    if len(payload["events"]) != 1:
        raise MalformedPayload("a receipt carries exactly one event: the recorded check")
    return payload


def check_receipt_checkpoint(note: str, key: bytes, checked_at: datetime,
                             issued_at: datetime) -> Checkpoint:
    checkpoint = verify_checkpoint(note, trusted_key([key]), "the receipt's checkpoint")
    if checkpoint.issued_at < checked_at or checkpoint.issued_at > issued_at:
        raise CheckpointInvalid("the receipt's checkpoint was not signed between the check and "
                                "the receipt")
    return checkpoint


def check_recorded(payload: dict[str, Any], state: bytes, topic: str, originator: str) -> None:
    """The recorded event is this check, and says what the receipt says."""
    if topic.rsplit(":", 1)[-1] != CHECK_KIND:
        raise StateMismatch(f"the receipt's event is a {topic.rsplit(':', 1)[-1]}, not a check")
    if originator.replace("-", "") != payload["number"]:
        raise StateMismatch("the receipt's number is not the recorded check's id")
    try:
        recorded = envelope.decode_payload(envelope.decode(state).payload)
    except ValueError as exc:
        raise MalformedPayload(f"the recorded check cannot be read: {exc}") from None
    for said, field in _SAME.items():
        if recorded.get(field) != payload[said]:
            raise StateMismatch(f"the receipt's {said} is not what the recorded check says")
