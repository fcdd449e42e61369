"""Where the ledger lives: a SQLite file by default, PostgreSQL in production."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ledger.errors import NoLedgerHere


class StoreUnavailable(Exception):
    """The database named by CREDIT_DATABASE_URL cannot be used; the message says why."""


def redacted(url: str | URL) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def parse_database_url(url: str) -> URL:
    """Accept ``sqlite:///PATH`` and ``postgresql+psycopg2://…``; refuse anything else clearly."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"{url!r} is not a database URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreUnavailable(
            f"{redacted(parsed)}: only sqlite:/// and postgresql+psycopg2:// databases are supported"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg2":
        raise StoreUnavailable(f"{redacted(parsed)}: use the postgresql+psycopg2:// driver")
    return parsed


# How long a SQLite writer waits for another's transaction (the longest batch of an import is a
# few seconds; a bulk import of a large file holds the lock longer): then it gives up, and says so.
SQLITE_BUSY_SECONDS = 120


LEDGER_TABLE = "credit_events"  # a database holds a ledger when it holds this table


def prepare_database(url: str, *, require_ledger: bool = False) -> str:
    """Check the database can be reached (creating a SQLite file's folder) and, with
    ``require_ledger``, that it holds a ledger (on the same connection); return the URL."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite" and "timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"timeout": str(SQLITE_BUSY_SECONDS)})
        url = parsed.render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the folder {folder} for {redacted(parsed)}: {exc.strerror}"
                ) from exc
        connect_args: dict[str, object] = {}
    else:
        connect_args = {"connect_timeout": 5}
    engine = create_engine(parsed, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            if require_ledger and not inspect(connection).has_table(LEDGER_TABLE):
                raise NoLedgerHere(redacted(parsed))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StoreUnavailable(f"cannot connect to {redacted(parsed)}: {reason}") from exc
    finally:
        engine.dispose()
    return url


class WriterQueue:
    """Writers of one SQLite file on this machine, queued on an ``flock`` of a file beside it
    (``credit.db.writers``). SQLite's own lock makes a waiting writer sleep and poll (up to
    100 ms a nap), so under concurrent writes a request could wait long after the lock was
    free; a blocked ``flock`` wakes the moment it is released. PostgreSQL queues its own
    waiters (row locks): there, and for in-memory databases, this does nothing."""

    def __init__(self, url: str) -> None:
        parsed = parse_database_url(url)
        database = parsed.database or ""
        self.path: Path | None = None
        if (parsed.get_backend_name() == "sqlite" and database and database != ":memory:"
                and not database.startswith("file:")):
            self.path = Path(database + ".writers")
        self._fd: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn and hold it (not reentrant: one holder per process)."""
        if self.path is None:
            yield
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
