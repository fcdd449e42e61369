"""Access tokens for the HTTP API: who a bearer token speaks for, as signed events.

A token is issued by the credit office for one principal — an authority (``tax``,
``credit-office``), a reader (``auditor:NAME``, ``court:NAME``, ``agency:NAME``) or a subject
(``subject:KEY``) — and revoked by it. The ledger keeps only the SHA-256 of the token's secret.
Issued and revoked as ledger events, signed by the credit office: whoever can write to the
database but holds no office key cannot mint a token (the API checks the issuing event's
signature before it believes a token), and every token ever issued is under the checkpoints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.base import DomainError, LedgerAggregate
from domain.events import apply_schemas
from domain.validation import check_text


class TokenRuleBroken(DomainError):
    pass


class AccessToken(LedgerAggregate):
    """One bearer token's principal and the digest of its secret."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @event("Issued")
    def __init__(self, *, actor: str, principal: str, role: str, digest: str,
                 note: str) -> None:
        self.principal = principal
        self.role = role
        self.digest = digest
        self.note = note
        self.revoked_at: datetime | None = None

    @classmethod
    def issue(cls, *, actor: str, principal: str, role: str, digest: str,
              note: str = "") -> AccessToken:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise TokenRuleBroken("a token's digest is the SHA-256 of its secret, in hex")
        check_text("principal", principal)
        check_text("note", note)
        return cls(actor=actor, principal=principal, role=role, digest=digest, note=note)

    def revoke(self, *, actor: str, reason: str) -> None:
        if self.revoked_at is not None:
            raise TokenRuleBroken("the token is already revoked")
        check_text("reason", reason)
        self._revoked(actor=actor, reason=reason)

    @event("Revoked")
    def _revoked(self, *, actor: str, reason: str) -> None:
        self.revoked_at = self.modified_on


apply_schemas(AccessToken)
