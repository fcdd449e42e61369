"""Stored events as the reducer's facts: decoded envelopes and payloads, in log order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Table, literal, select, tuple_, type_coerce
from sqlalchemy.engine import Connection
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


def iter_subject_facts(connection: Any, events: Table, until: int, page: int = 5000,
                       start: str | None = None, stop: str | None = None
                       ) -> Iterator[tuple[str, list[Fact]]]:
    """Every subject (from ``start``, before ``stop``) with its events up to ``until``, subject
    by subject, in pages by key: a streaming pass over the subject index with flat memory."""
    log = tables.log
    after = (start or "", -1)
    current: str | None = None
    bucket: list[Fact] = []
    while True:
        rows = connection.execute(
            select(log.c.subject, log.c.position, events.c.id, _oid(events.c.originator_id),
                   events.c.originator_version, events.c.topic, _raw(events.c.state))
            .join(events, events.c.id == log.c.notification_id)
            .where(log.c.subject.is_not(None), log.c.position <= until,
                   tuple_(log.c.subject, log.c.position) > tuple_(literal(after[0]),
                                                                  literal(after[1])),
                   *([log.c.subject < stop] if stop is not None else []))
            .order_by(log.c.subject, log.c.position)
            .limit(page)
        ).all()
        for subject, *row in rows:
            if subject != current:
                if current is not None:
                    yield current, bucket
                current, bucket = subject, []
            bucket.append(fact_from_row(*row))
        if len(rows) < page:
            break
        after = (rows[-1][0], rows[-1][1])
    if current is not None:
        yield current, bucket
