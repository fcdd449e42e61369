"""What kind of refusal an error is, for a door that must say it with a status (the HTTP API):
the caller is not known, may not, asked for what is not there or not shown, conflicts with
what the ledger holds, sent what cannot be taken, or the database is unavailable."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from domain.base import DomainError
from domain.disclosure import NotPublic, NotWhollyPublic
from domain.identifiers import InvalidIdentifier
from domain.permissions import NotPermitted
from domain.policies import NoPolicyInForce, PolicyError
from domain.queries import PurposeRequired
from keys.registry import KeyRegistryError
from keys.store import KeyStoreError
from ledger.errors import AlreadyRecorded, LedgerError, NotFound, SubjectNotRegistered
from workflows.importer import ImportRefused
from workflows.tokens import TokenRefused
from workflows.window import NotShown

KINDS = ("unauthenticated", "forbidden", "not_found", "conflict", "invalid", "unavailable")


def kind_of_refusal(exc: BaseException) -> str | None:
    """One of KINDS, or None for what is no refusal (a bug)."""
    if isinstance(exc, TokenRefused):
        return "unauthenticated"
    if isinstance(exc, NotPermitted | NotWhollyPublic):
        return "forbidden"
    if isinstance(exc, NotFound | SubjectNotRegistered | NotShown | NotPublic):
        return "not_found"  # a person's file is "not found" to those who may not see it
    if isinstance(exc, AlreadyRecorded):
        return "conflict"
    if isinstance(exc, ImportRefused):
        already = [e for e in exc.errors if "already in the ledger" in e.reason]
        return "conflict" if already and len(already) == len(exc.errors) else "invalid"
    if isinstance(exc, PurposeRequired | InvalidIdentifier | DomainError | LedgerError
                  | KeyRegistryError | KeyStoreError | PolicyError | NoPolicyInForce):
        return "invalid"
    if isinstance(exc, OperationalError):
        return "unavailable"
    return None
