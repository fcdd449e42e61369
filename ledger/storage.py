"""Where the ledger lives: a SQLite file by default, PostgreSQL in production."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
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


def sqlite_path(url: URL) -> str | None:
    """The file of a ``sqlite:///PATH`` URL; None for another database, an in-memory one or a
    ``file:`` URI (whose path SQLite reads itself)."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return database


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
        database = sqlite_path(parsed)
        if database is not None:
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
        database = sqlite_path(parse_database_url(url))
        self.path: Path | None = None if database is None else Path(database + ".writers")
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


# -- SQLite's write-ahead log --------------------------------------------------------------------
# What grows with the ledger is the number of pages one batch dirties: the events' id index, the
# subject index and the chains take random keys, so at a million events almost every event lands
# on pages of its own. SQLite copies the WAL into the database (and fsyncs it) at a checkpoint,
# which its writers run themselves whenever the WAL passes 1,000 pages: at that size, every
# commit, with an fsync of thousands of scattered pages. The ledger's writers instead leave the
# copying to a thread (``WalCheckpointer``) that runs beside them at most once a second, once
# CHECKPOINT_EVENTS events have been written since its last copy (small writes checkpoint about
# as often as SQLite's own threshold made them; fewer are copied after CHECKPOINT_IDLE seconds),
# so a page dirtied by several batches is copied once and the writer never waits for the copy;
# they run it themselves only past SQLITE_WAL_PAGES, should the thread fall behind. A larger page
# cache keeps the indexes' inner pages in memory between batches.

SQLITE_CACHE_KIB = 65_536
SQLITE_WAL_PAGES = 50_000  # about 200 MB of WAL
CHECKPOINT_INTERVAL = 1.0  # seconds between background checkpoints, at most
CHECKPOINT_EVENTS = 500  # events written since the last background checkpoint, at least
CHECKPOINT_IDLE = 10.0  # or this many seconds after fewer were written

log = logging.getLogger(__name__)


def sqlite_file(engine: Engine) -> str | None:
    """The SQLite database file behind an engine (None: another database, or in memory)."""
    return sqlite_path(engine.url)


def tune_sqlite_writer(engine: Engine) -> None:
    """Give the ledger's own SQLite connections a larger page cache and leave checkpoints to the
    background (connections already pooled are closed, so every connection has both)."""
    if sqlite_file(engine) is None:
        return

    def pragmas(connection: Any, _record: Any) -> None:
        connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        connection.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_PAGES}")

    event.listen(engine, "connect", pragmas)
    engine.dispose()


class WalCheckpointer:
    """Copies a SQLite file's write-ahead log into the database beside the writers.

    ``nudge(events)`` after a commit; once ``events`` add up to ``every`` since its last
    checkpoint (or ``idle`` seconds after fewer), the thread runs a PASSIVE one (it never
    blocks a reader or a writer), at least ``interval`` seconds after the one before. A
    checkpoint that fails (a full disk) is logged and left to the next one, or to the writers'
    own at SQLITE_WAL_PAGES: the data is safe in the WAL either way."""

    def __init__(self, path: str, interval: float = CHECKPOINT_INTERVAL,
                 every: int = CHECKPOINT_EVENTS, idle: float = CHECKPOINT_IDLE) -> None:
        self.path = path
        self.interval = interval
        self.every = every
        self.idle = idle
        self._written = 0  # events since the last checkpoint (a count: races only delay it)
        self._nudged = threading.Event()
        self._closing = threading.Event()
        self._connection: sqlite3.Connection | None = None
        self.checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="credit-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def nudge(self, events: int = 1) -> None:
        self._written += events
        if self._written >= self.every:
            self._nudged.set()

    def close(self) -> None:
        """Stop the thread (what the WAL holds stays there, safe, for the next checkpoint)."""
        self._closing.set()
        self._nudged.set()
        self._thread.join()

    def _run(self) -> None:
        last = 0.0
        try:
            while True:
                nudged = self._nudged.wait(self.idle)
                if self._closing.is_set():
                    return
                if not nudged and not self._written:
                    continue  # idle, and nothing written since the last checkpoint
                if self._closing.wait(last + self.interval - time.monotonic()):
                    return
                self._nudged.clear()
                self._written = 0
                last = time.monotonic()
                self._checkpoint()
        finally:
            if self._connection is not None:
                self._connection.close()

    def _checkpoint(self) -> None:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_SECONDS,
                                                   check_same_thread=False)
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
        except sqlite3.Error as exc:
            log.warning("background WAL checkpoint of %s failed (%s); the writers' own "
                        "checkpoint will copy it", self.path, exc)
