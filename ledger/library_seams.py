"""The one place the ledger reaches into eventsourcing's and eventsourcing-sqlalchemy's private parts.

The ledger saves through public extension points where the libraries have them
(``Application.construct_*``, ``ProcessingEvent``, ``EventStore.put``, ``Repository.cache``).
Two things have none, so they are done here and nowhere else:

- ``lock_events_table``: eventsourcing-sqlalchemy takes ``LOCK TABLE … IN EXCLUSIVE MODE`` on
  PostgreSQL so that notification ids commit in the order they were given (its
  ``_lock_table``); the ledger's own insert path must take the same lock.
- ``notify_new_events``: followers are woken by its ``NOTIFY`` on the events' channel (its
  ``_notify_channel``), sent inside the writing transaction.

``tests/unit/test_library_seams.py`` fails loudly when an installed version is not one these were
checked against or a private name is gone: read the new version's code, then widen
``CHECKED_VERSIONS``.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy.orm import Session

# distribution -> version prefixes whose private parts used here were read and tested
CHECKED_VERSIONS = {"eventsourcing": ("9.5.",), "eventsourcing-sqlalchemy": ("1.0.",)}
# (class, private attribute) this module calls
PRIVATE_PARTS: tuple[tuple[type[Any], str], ...] = (
    (SQLAlchemyApplicationRecorder, "_lock_table"),
    (SQLAlchemyApplicationRecorder, "_notify_channel"),
)


def unchecked_versions() -> dict[str, str]:
    """Installed distributions outside the versions this adapter was checked against."""
    found = {name: version(name) for name in CHECKED_VERSIONS}
    return {name: v for name, v in found.items() if not v.startswith(CHECKED_VERSIONS[name])}


def lock_events_table(recorder: SQLAlchemyApplicationRecorder, session: Session) -> None:
    """The library's write lock on the events table (PostgreSQL; a no-op elsewhere)."""
    SQLAlchemyApplicationRecorder._lock_table(recorder, session)


def notify_new_events(recorder: SQLAlchemyApplicationRecorder, session: Session) -> None:
    """Wake the library's subscribers (PostgreSQL NOTIFY; nothing elsewhere)."""
    SQLAlchemyApplicationRecorder._notify_channel(recorder, session)
