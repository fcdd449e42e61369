"""Opening the ledger for one command, and the errors a command reports as one sentence.

The two doors (``cli/`` and ``web/``) open the ledger here and catch ``USER_ERRORS``; everything
else they need comes from the other workflow modules and the read-model queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError

from domain.base import DomainError
from domain.identifiers import InvalidIdentifier
from domain.policies import NoPolicyInForce, PolicyError
from keys.registry import KeyRegistryError
from keys.store import KeyStoreError
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from ledger.mapper import UnsignableEvent
from ledger.recorder import LedgerCorrupted
from ledger.settings import DEVELOPMENT_SECRET, Settings
from ledger.storage import StoreUnavailable, WriterQueue, redacted

__all__ = ["DEVELOPMENT_SECRET", "USER_ERRORS", "CreditLedger", "Settings", "WriterQueue", "opened",
           "read_only", "redacted"]

# Errors that are the user's input or environment, reported as one sentence; anything else is a
# bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    LedgerError, DomainError, KeyStoreError, KeyRegistryError, StoreUnavailable,
    LedgerCorrupted, InvalidIdentifier, UnsignableEvent, PersistenceError, PolicyError,
    NoPolicyInForce,
    # the database refusing to work (read-only file, full disk, lost connection): the
    # environment's fault, said in one sentence
    DatabaseOperationalError,
)


def read_only(settings: Settings) -> Settings:
    """The same ledger opened without any secret: it can read, never sign."""
    return replace(settings, passphrase=None, secrets={}, secrets_dir=None,
                   development_secrets=False)


@contextmanager
def opened(settings: Settings) -> Iterator[CreditLedger]:
    ledger = CreditLedger(settings)
    try:
        yield ledger
    finally:
        ledger.close()
