"""Stored events as the reducer's facts: decoded envelopes and payloads, in log order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table, func, literal, select, tuple_, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType

from domain.state import Fact
from ledger import tables
from proofs.facts import fact_from_row

__all__ = ["fact_from_row", "iter_subject_facts", "read_facts", "read_facts_of"]


def _raw(column: Any) -> Any:
    """A column as the driver returns it: no per-row type processing on hot paths."""
    return type_coerce(column, NullType()).label(column.name)


class _UuidText(FunctionElement[Any]):
    """An originator id as the database gives it cheapest: PostgreSQL's canonical text (psycopg2
    would otherwise build a UUID object per row, a fifth of reading a subject's events), and
    SQLite's 16 bytes as stored."""

    type = NullType()
    inherit_cache = True


@compiles(_UuidText)
def _uuid_as_stored(element: _UuidText, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_UuidText, "postgresql")
def _uuid_as_text(element: _UuidText, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


def oid_as_stored(column: Any) -> Any:
    """An originator id column as the database gives it cheapest (``_UuidText``)."""
    return _UuidText(column)


def _oid(column: Any) -> Any:
    return oid_as_stored(column).label(column.name)


def read_facts(connection: Connection, events: Table, subject: str) -> list[Fact]:
    """Every event about ``subject``, through the subject index (no scan of the log)."""
    log = tables.log
    rows = connection.execute(
        select(log.c.position, events.c.id, _oid(events.c.originator_id),
               events.c.originator_version, events.c.topic, _raw(events.c.state))
        .join(events, events.c.id == log.c.notification_id)
        .where(log.c.subject == subject)
        .order_by(log.c.position)
    )
    return [fact_from_row(*row) for row in rows]


def read_facts_of(connection: Any, events: Table, subjects: list[str],
                  until: int | None = None) -> dict[str, list[Fact]]:
    """The events of several subjects at once (one query per 500), up to log position ``until``."""
    log = tables.log
    found: dict[str, list[Fact]] = {s: [] for s in subjects}
    for start in range(0, len(subjects), 500):
        query = (
            select(log.c.subject, log.c.position, events.c.id, _oid(events.c.originator_id),
                   events.c.originator_version, events.c.topic, _raw(events.c.state))
            .join(events, events.c.id == log.c.notification_id)
            .where(log.c.subject.in_(subjects[start:start + 500]))
            .order_by(log.c.subject, log.c.position)
        )
        if until is not None:
            query = query.where(log.c.position <= until)
        for subject, *row in connection.execute(query):
            found[subject].append(fact_from_row(*row))
    return found


def _state_as_text(connection: Any) -> bool:
    """Whether ``connection`` can read a state as UTF-8 text, which costs less than bytes: on
    PostgreSQL, where psycopg2 reads ``bytea`` as hex (the server writes 2 characters a byte,
    the driver parses them back; read as text, a million events' facts took 32.6 us an event of
    the two, against 38.4). States as written are UTF-8 with no NUL (an ASCII header, a JSON
    payload, which escapes it)."""
    if connection.dialect.name != "postgresql":
        return False
    encodings = connection.exec_driver_sql(
        "SELECT current_setting('server_encoding'), current_setting('client_encoding')").one()
    return tuple(encodings) == ("UTF8", "UTF8")


def iter_subject_facts(connection: Any, events: Table, until: int, page: int = 5000,
                       start: str | None = None, stop: str | None = None
                       ) -> Iterator[tuple[str, list[Fact]]]:
    """Every subject (from ``start``, before ``stop``) with its events up to ``until``, subject
    by subject, in pages by key: a streaming pass over the subject index with flat memory."""
    log = tables.log
    as_text = _state_as_text(connection)
    after = (start or "", -1)
    current: str | None = None
    bucket: list[Fact] = []

    def read(state: Any) -> Sequence[Any]:
        page_rows: Sequence[Any] = connection.execute(
            select(log.c.subject, log.c.position, events.c.id, _oid(events.c.originator_id),
                   events.c.originator_version, events.c.topic, state)
            .join(events, events.c.id == log.c.notification_id)
            .where(log.c.subject.is_not(None), log.c.position <= until,
                   tuple_(log.c.subject, log.c.position) > tuple_(literal(after[0]),
                                                                  literal(after[1])),
                   *([log.c.subject < stop] if stop is not None else []))
            .order_by(log.c.subject, log.c.position)
            .limit(page)
        ).all()
        return page_rows

    while True:
        as_bytes: Callable[[Any], bytes] = bytes
        if as_text:
            try:
                with connection.begin_nested():
                    rows = read(func.convert_from(events.c.state, "UTF8").label("state"))
                as_bytes = str.encode
            except DataError:  # a state that is not UTF-8 (tampered): read as bytes, it fails
                rows = read(_raw(events.c.state))  # where it does on SQLite, in fact_from_row
        else:
            rows = read(_raw(events.c.state))
        for subject, position, nid, oid, version, topic, state in rows:
            if subject != current:
                if current is not None:
                    yield current, bucket
                current, bucket = subject, []
            bucket.append(fact_from_row(position, nid, oid, version, topic, as_bytes(state)))
        if len(rows) < page:
            break
        after = (rows[-1][0], rows[-1][1])
    if current is not None:
        yield current, bucket
