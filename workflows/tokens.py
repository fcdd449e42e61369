"""API tokens: issued and revoked by the credit office as signed events (domain/access.py),
believed only after the issuing event's signature checks against the key registry.

A bearer token is ``clt_<token id>.<secret>``; the ledger keeps the SHA-256 of the secret.
The secret is printed once, when issued, and cannot be recovered (issue another)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select

from domain.access import AccessToken
from domain.permissions import check_permitted
from domain.state import kind_of
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from proofs.checks import EventChecker, oid_text
from proofs.envelope import decode, decode_payload
from workflows.reads import Reader, Reads
from workflows.services import CreditServices

BEARER = re.compile(r"^clt_([0-9a-f]{32})\.([A-Za-z0-9_-]{20,100})$")
ISSUER_ROLE = "credit_office"


class TokenRefused(LedgerError):
    """The request's token is missing, malformed, unknown, revoked or not genuine (HTTP 401).
    The reason is for the log; the caller is told only that the token is not accepted."""


@dataclass(frozen=True)
class IssuedToken:
    token_id: UUID
    principal: str
    role: str
    bearer: str  # shown once


class Tokens:
    def __init__(self, ledger: CreditLedger) -> None:
        self.ledger = ledger
        self.reads = Reads(CreditServices(ledger))

    def issue(self, actor: str, principal: str, note: str = "") -> IssuedToken:
        check_permitted("token.issue", actor, self.ledger.role_of(actor))
        reader = self.reads.reader(principal)  # an unknown authority is refused here
        secret = secrets.token_urlsafe(32)
        token = AccessToken.issue(actor=actor, principal=reader.name, role=reader.role,
                                  digest=hashlib.sha256(secret.encode()).hexdigest(), note=note)
        self.ledger.save(token)
        return IssuedToken(token.id, reader.name, reader.role, f"clt_{token.id.hex}.{secret}")

    def revoke(self, actor: str, token_id: UUID, reason: str) -> None:
        check_permitted("token.revoke", actor, self.ledger.role_of(actor))
        token = self.ledger.get(token_id, AccessToken, "token")
        token.revoke(actor=actor, reason=reason)
        self.ledger.save(token)

    def listed(self) -> list[dict[str, Any]]:
        """Every token ever issued: id, principal, role, note, issued and revoked (when, by)."""
        tokens: dict[str, dict[str, Any]] = {}
        for fact in self.ledger.stream_facts(AccessToken.__name__):
            if fact.kind == "AccessToken.Issued":
                tokens[fact.aggregate_id] = {
                    "token_id": UUID(fact.aggregate_id).hex, "principal": fact.data["principal"],
                    "role": fact.data["role"], "note": fact.data["note"],
                    "issued_at": fact.recorded_at.isoformat(), "issued_by": fact.actor,
                    "revoked_at": None}
            elif fact.kind == "AccessToken.Revoked" and fact.aggregate_id in tokens:
                tokens[fact.aggregate_id].update(revoked_at=fact.recorded_at.isoformat(),
                                                 revoked_by=fact.actor)
        return list(tokens.values())

    def authenticate(self, bearer: str) -> Reader:
        """The principal a bearer token speaks for; TokenRefused unless the token was issued
        by the credit office in a signed event that checks, its secret matches, and it was
        never revoked."""
        found = BEARER.match(bearer.strip())
        if found is None:
            raise TokenRefused("not a token of this platform")
        token_id = UUID(found.group(1))
        rows = self._rows(token_id)
        if not rows:
            raise TokenRefused(f"token {token_id} was never issued")
        self.ledger.refresh()
        checker = EventChecker(self.ledger.registry)
        for row in rows:
            failure = checker.check(*row)
            if failure is not None:
                raise TokenRefused(f"token {token_id}: its events do not verify: {failure}")
        _, _, version, topic, state = rows[0]
        issued = decode(state)
        data = decode_payload(issued.payload)
        if version != 1 or kind_of(topic) != "AccessToken.Issued":
            raise TokenRefused(f"token {token_id}: its first event is not its issue")
        issuer = self.ledger.registry.authorities.get(issued.actor)
        if issuer is None or issuer.kind != ISSUER_ROLE:
            raise TokenRefused(f"token {token_id} was not issued by the credit office")
        digest = hashlib.sha256(found.group(2).encode()).hexdigest()
        if not hmac.compare_digest(digest, str(data["digest"])):
            raise TokenRefused(f"token {token_id}: the secret does not match")
        if any(kind_of(topic) == "AccessToken.Revoked" for _, _, _, topic, _ in rows[1:]):
            raise TokenRefused(f"token {token_id} is revoked")
        reader = self.reads.reader(str(data["principal"]))
        if reader.role != data["role"]:
            raise TokenRefused(f"token {token_id}: its principal's role changed")
        return reader

    def _rows(self, token_id: UUID) -> list[tuple[int, str, int, str, bytes]]:
        events = self.ledger.recorder.events_table
        with self.ledger.reading() as session:
            found = session.execute(
                select(events.c.id, events.c.originator_id, events.c.originator_version,
                       events.c.topic, events.c.state)
                .where(events.c.originator_id == token_id)
                .order_by(events.c.originator_version)).all()
        return [(int(nid), oid_text(oid), int(version), str(topic), bytes(state))
                for nid, oid, version, topic, state in found]
