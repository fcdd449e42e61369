"""Multi-row inserts through the database driver, for the write path's three tables.

SQLAlchemy's per-row parameter processing costs more than the insert itself at ingest rates, so
the recorder hands ready-made rows to the driver: ``executemany`` on SQLite (one prepared
statement). On PostgreSQL, ``COPY`` where no value comes back (quoting every value into one
multi-row statement cost more than the server's work): the events with ids taken from their
sequence beforehand, the other rows as they are or, where rows update others (``upsert_rows``:
the chain index and map), through a staging table. Values are converted here to exactly what
SQLAlchemy would have stored, so both paths read back the same.
"""

from __future__ import annotations

import io
import logging
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import psycopg2
from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    StoredEvent,
)
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)


class BulkWriteError(Exception):
    """The database did not number the inserted events as the ledger requires."""


@contextmanager
def driver_errors() -> Iterator[None]:
    """Raise the driver's errors as eventsourcing's, as SQLAlchemy's session would have."""
    try:
        yield
    except (sqlite3.IntegrityError, psycopg2.IntegrityError) as exc:
        raise IntegrityError(exc) from exc
    except (sqlite3.OperationalError, psycopg2.OperationalError) as exc:
        raise OperationalError(exc) from exc
    except (sqlite3.DatabaseError, psycopg2.DatabaseError) as exc:
        raise DatabaseError(exc) from exc


def _sqlite_time(moment: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format, so ORM and Core reads parse it back.
    return None if moment is None else moment.isoformat(" ", "microseconds")


class BulkWriter:
    """Dialect-specific multi-row inserts inside the session's transaction."""

    def __init__(self, dialect: str, events_table: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no bulk writer for {dialect}")
        self.dialect = dialect
        self.events_table = events_table

    def _cursor(self, tx: Session) -> Any:
        return tx.connection().connection.cursor()

    def insert_events(self, tx: Session, events: Sequence[StoredEvent]) -> list[int]:
        """Insert events and return their notification ids, in order."""
        with driver_errors():
            return self._insert_events(self._cursor(tx), events)

    def _insert_events(self, cursor: Any, events: Sequence[StoredEvent]) -> list[int]:
        table = self.events_table
        if self.dialect == "sqlite":
            cursor.execute(f"SELECT max(id) FROM {table}")
            first = (cursor.fetchone()[0] or 0) + 1
            cursor.executemany(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?)",
                [(_uuid(e.originator_id).bytes, e.originator_version, e.topic, e.state)
                 for e in events],
            )
            # INTEGER PRIMARY KEY rows take max(id) + 1, and the write lock is held, so the ids
            # are first .. first + n - 1; check rather than assume.
            cursor.execute(f"SELECT max(id) FROM {table}")
            last = cursor.fetchone()[0]
            if last != first + len(events) - 1:
                raise BulkWriteError(f"expected ids {first}..{first + len(events) - 1}, got {last}")
            return list(range(first, first + len(events)))
        # The ids from the table's sequence in one step (the write lock is held, so no other
        # writer takes any in between), then the rows with them by COPY, which costs the
        # server less than a multi-row INSERT ... RETURNING.
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                       "nextval(pg_get_serial_sequence(%s, 'id')) + %s)",
                       (table, table, len(events) - 1))
        first = int(cursor.fetchone()[0]) - len(events) + 1
        ids = list(range(first, first + len(events)))
        copy_rows(cursor, table, ("id", "originator_id", "originator_version", "topic", "state"),
                  [(nid, e.originator_id, e.originator_version, e.topic, e.state)
                   for nid, e in zip(ids, events, strict=True)])
        return ids

    def insert_log(self, tx: Session, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows: (position, notification_id, originator_id, version, stream, subject,
        recorded_at, effective_at, leaf_hash) with naive UTC times."""
        with driver_errors():
            self._insert_log(self._cursor(tx), rows)

    def _insert_log(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        columns = ("position, notification_id, originator_id, originator_version, stream, "
                   "subject, recorded_at, effective_at, leaf_hash")
        if self.dialect == "sqlite":
            cursor.executemany(
                f"INSERT INTO ledger_log ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(p, n, _uuid(o).bytes, v, s, subj, _sqlite_time(r), _sqlite_time(eff), h)
                 for p, n, o, v, s, subj, r, eff, h in rows],
            )
        else:
            copy_rows(cursor, "ledger_log", columns.split(", "), rows)

    def insert_nodes(self, tx: Session, rows: Sequence[tuple[int, int, bytes]]) -> None:
        """Rows: (level, idx, hash) of completed perfect subtrees."""
        if not rows:
            return
        with driver_errors():
            cursor = self._cursor(tx)
            if self.dialect == "sqlite":
                cursor.executemany("INSERT INTO ledger_tree (level, idx, hash) VALUES (?, ?, ?)",
                                   rows)
            else:
                copy_rows(cursor, "ledger_tree", ("level", "idx", "hash"), rows)


# -- PostgreSQL's COPY ... FROM STDIN, text format --------------------------------------------

_COPY_SPECIAL = re.compile("[\\\\\t\n\r\x00]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_rows(cursor: Any, table: str, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> None:
    """Insert rows into a PostgreSQL table with one COPY (the text format)."""
    text = "".join(["\t".join(map(copy_text, row)) + "\n" for row in rows])
    with _PRINTED_ERRORS.held() as held:
        try:
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN",
                               io.StringIO(text))
        except Exception:
            for error in held:  # the error raised says the same; its kind, for whoever debugs
                # (not its text: psycopg2 quotes the failing row, which may hold an ID number)
                logger.debug("psycopg2 also reported %s during the failed COPY into %s",
                             type(error).__name__, table)
            raise
    for error in held:  # not seen to happen: what psycopg2 printed is printed as it would be
        _PRINTED_ERRORS.previous(type(error), error, error.__traceback__)


class _ErrorsPsycopg2Prints:
    """Holds what psycopg2 prints as a COPY fails, instead of letting it reach stderr.

    psycopg2 (2.9) reads every result the server sends after a COPY; when a backend ends
    mid-COPY there are two errors (the server's FATAL, then the closed socket), and while the
    first is pending raising the second fails and is printed with ``PyErr_Print`` — that is,
    through ``sys.excepthook`` — beside the exception the COPY then raises. A command that lost
    its connection would show a traceback above its one-sentence error. The hook is installed
    once, chained to the one it finds, and holds errors only for the thread inside a COPY.
    """

    def __init__(self) -> None:
        self.previous: Callable[[type[BaseException], BaseException, TracebackType | None],
                                Any] = sys.__excepthook__
        self._copying = threading.local()

    def __call__(self, kind: type[BaseException], error: BaseException,
                 traceback: TracebackType | None) -> None:
        held: list[BaseException] | None = getattr(self._copying, "held", None)
        if held is None:
            self.previous(kind, error, traceback)
        else:
            held.append(error)

    @contextmanager
    def held(self) -> Iterator[list[BaseException]]:
        if sys.excepthook is not self:
            self.previous, sys.excepthook = sys.excepthook, self
        held: list[BaseException] = []
        self._copying.held = held
        try:
            yield held
        finally:
            self._copying.held = None


_PRINTED_ERRORS = _ErrorsPsycopg2Prints()


def upsert_rows(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                on_conflict: str) -> None:
    """Insert rows into a PostgreSQL table or update those it has (``on_conflict``): COPY into
    a temporary twin, then one statement that moves them out of it into the table (so a second
    call in the same transaction starts from an empty twin)."""
    staging = f"staging_{table}"
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table}) "
                   "ON COMMIT DELETE ROWS")
    copy_rows(cursor, staging, columns, rows)
    listed = ", ".join(columns)
    cursor.execute(f"WITH moved AS (DELETE FROM {staging} RETURNING {listed}) "
                   f"INSERT INTO {table} ({listed}) SELECT {listed} FROM moved {on_conflict}")


def copy_text(value: Any) -> str:
    """One value in COPY's text format: text escaped, NULL as ``\\N``, bytes as ``\\x`` hex,
    dates, times and UUIDs in the text PostgreSQL reads them from."""
    if type(value) is str:
        if _COPY_SPECIAL.search(value) is None:  # most text: nothing to escape
            return value
        if "\x00" in value:  # as psycopg2 refuses it in a literal: PostgreSQL text has no NUL
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
        return value.translate(_COPY_ESCAPES)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, date, UUID)):
        return str(value)  # a date's or naive time's str is its ISO form with a space
    if isinstance(value, (bytes, memoryview)):
        return "\\\\x" + bytes(value).hex()  # bytea's hex form, its backslash escaped
    if isinstance(value, str):  # a subclass of str
        return copy_text(str(value))
    raise TypeError(f"no COPY text form for a {type(value).__name__}")


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
