"""What the ledger's rows hold, as a verifier must check it: PostgreSQL enforces its column types,
SQLite keeps any value in any column (text where the ledger writes bytes, a version that is not a
number), so on SQLite ``credit verify`` asks the database for each row's types as it reads it and
names a row that is not as the ledger writes it, instead of stopping on it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

# What each column of the two tables verify's pass reads holds, as the ledger writes it.
EVENT_COLUMNS = {"originator_id": "uuid", "originator_version": "integer", "topic": "text",
                 "state": "blob"}
LOG_COLUMNS = {"position": "integer", "notification_id": "integer", "originator_id": "uuid",
               "originator_version": "integer", "leaf_hash": "hash", "stream": "text",
               "subject": "text or null"}
_SQLITE_TYPE_TEST = {
    "uuid": "typeof({0}) = 'blob' AND length({0}) = 16",
    "hash": "typeof({0}) = 'blob' AND length({0}) = 32",
    "integer": "typeof({0}) = 'integer'",
    "text": "typeof({0}) = 'text'",
    "text or null": "typeof({0}) IN ('text', 'null')",
    "blob": "typeof({0}) = 'blob'",
}


def well_typed(dialect: str, columns: dict[str, str]) -> str:
    """A select-list expression: whether a row's columns hold what the ledger writes."""
    if dialect != "sqlite":
        return "1"
    return "(" + " AND ".join(_SQLITE_TYPE_TEST[kind].format(name)
                              for name, kind in columns.items()) + ")"


def mistyped(table: str, columns: dict[str, str], values: Sequence[Any]) -> str:
    """The fact of a row whose values are not what the ledger writes (SQLite only)."""
    wrong = [f"{name} holds {type(value).__name__} {shown(value)}, not {kind}"
             for (name, kind), value in zip(columns.items(), values, strict=True)
             if not _holds(kind, value)]
    return f"{table} row with values of the wrong type ({'; '.join(wrong)}): not written by the ledger"


# What reading a value of an unexpected type raises: in our checks, in SQLAlchemy's result
# processors (a date column holding other text), or in the driver (SQLite text that is not UTF-8).
UNREADABLE = (TypeError, ValueError, UnicodeError, OverflowError, sqlite3.OperationalError,
              DBAPIError)


def unreadable(exc: BaseException) -> bool:
    """Whether ``exc`` is about a value, not about the database (a lost connection is raised)."""
    if isinstance(exc, (sqlite3.OperationalError, DBAPIError)):
        return "Could not decode to UTF-8" in str(exc)
    return True


def _holds(kind: str, value: Any) -> bool:
    if kind in ("uuid", "hash"):
        return isinstance(value, bytes) and len(value) == (16 if kind == "uuid" else 32)
    if kind == "integer":
        return isinstance(value, int)
    if kind == "blob":
        return isinstance(value, bytes)
    return isinstance(value, str) or (kind == "text or null" and value is None)


def shown(value: Any) -> str:
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."
