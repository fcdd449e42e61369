"""The query log (查询记录): every read of what is not public, as a signed event in the ledger.

Chosen over a separate hash-chained table: an event in the ledger is signed, in the Merkle log,
under every checkpoint and checked by ``credit verify`` like every other, is never deleted (so
kept well past the ten years asked for), and needs no second tamper-evidence scheme. A logged
query is filed under its own stream (``~Query``), not under the subject it is about, so a
subject's extract does not carry who read its file.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.base import DomainError, LedgerAggregate
from domain.events import apply_schemas


class PurposeRequired(DomainError):
    def __init__(self, command: str) -> None:
        super().__init__(f"{command.replace('.', ' ')} reads what is not public: state the "
                         "purpose (--purpose)")


class Query(LedgerAggregate):
    """One read of a subject's non-public file: who, whose file, why, what was returned."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return uuid4()

    @event("Logged")
    def __init__(self, *, actor: str, reader: str, role: str, command: str, about: str | None,
                 purpose: str, returned: str) -> None:
        self.reader = reader
        self.role = role
        self.command = command
        self.about = about
        self.purpose = purpose
        self.returned = returned

    @classmethod
    def log(cls, *, actor: str, reader: str, role: str, command: str, about: str | None,
            purpose: str | None, returned: str) -> Query:
        """``actor`` signs (the reader's authority, or the platform for readers without a
        key); ``returned`` says what the reader was given (counts and ids, not the content)."""
        if not purpose or not purpose.strip():
            raise PurposeRequired(command)
        return cls(actor=actor, reader=reader, role=role, command=command, about=about,
                   purpose=purpose.strip(), returned=returned)


apply_schemas(Query)
