"""The subjects projection: each subject's current state, as the reducer computes it, in rows.

The read model is a cache of ``domain.state.subject_state`` for the projection's day: the subject
row (name, grade and its explanation, list flags, counts, and the day its state next changes by
time alone), its records with their flags, listings, objections and repairs. A subject is
recomputed whenever one of its events arrives, and again on its ``changes_on`` day.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import psycopg2
from sqlalchemy import Date, Table, delete, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError

from domain.state import Fact, subject_state
from ledger.bulk import copy_rows
from projections.schema import tables_of

EVERYTHING = datetime(9999, 12, 31, tzinfo=UTC)  # facts are limited by log position instead


def _encoder(**options: Any) -> Callable[[Any], str]:
    """``json.dumps`` with these options, for the values a state holds (dicts, lists, text,
    numbers, booleans, None; never a cycle), made once. ``json.dumps`` with an option set builds
    a JSONEncoder per call, and ``JSONEncoder.encode`` its C encoder per call: each cost as
    much as the encoding of a record's details (0.5 against 1.4 us). The C encoder made once
    gives the same text (a test compares them); without it, ``encode``."""
    encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, **options)
    try:
        scan = c_make_encoder(None, encoder.default, encode_basestring, None,
                              encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                              encoder.skipkeys, encoder.allow_nan)
    except TypeError:  # no C encoder here (None), or one that takes other arguments
        return encoder.encode

    def encode(value: Any) -> str:
        return "".join(scan(value, 0))

    return encode


_SORTED_JSON = _encoder(sort_keys=True)
_JSON = _encoder()

# The columns of each table, in the order ``row_values_of`` gives their values.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    name: tuple(column.name for column in table.columns)
    for name, table in tables_of("subjects", 0).items()}


def rows_of(state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The read-model rows of one subject's state, by column name (``row_values_of``)."""
    return {name: [dict(zip(COLUMNS[name], row, strict=True)) for row in rows]
            for name, rows in row_values_of(state).items()}


def row_values_of(state: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The read-model rows of one subject's state, each a tuple of its table's values in column
    order (``COLUMNS``), in the form the tables store them: days as ISO text (``2019-03-01``),
    as the reducer gives them and as SQLite keeps a date; booleans as ``bool``. Tuples, not
    dicts: a record's dict, then its values picked out for the driver, cost 1.4 us more a
    record (a test checks each value against the state's field of the column's name)."""
    subject = state["subject"]
    grade = state["grade"]
    records = [(
        r["id"], subject, r["department"], r["item_code"], r["item_name_zh"],
        r["item_name_en"], r["category"], r["polarity"], r["severity"],
        r["catalogue_version"], r["decision_number"], r["decision_date"], r["summary"],
        _SORTED_JSON(r["details"]), r["status"], r["public"], r["shared"],
        r["under_objection"], r["corrected"], r["repaired"], r["disclosure_ended"],
        r["revoked"], r["disclosure_until"],
    ) for r in state["records"]]
    listings = [(
        x["id"], subject, x["number"], x["list"], x["authority"], x["legal_basis"],
        x["status"], x["start"], x["planned_end"], x["ends_on"], x["removed_on"],
        _JSON(x["measures"]),
    ) for x in state["listings"]]
    objections = [(
        o["id"], subject, o["number"], o["target"], o["target_id"], o["status"],
        o["raised_on"], o["accepted_on"], o["deadline"], o["deadline_provisional"],
        o["extended"], o["overdue"], o["outcome"], o["ruled_on"], o["late"], o["review"],
    ) for o in state["objections"]]
    repairs = [(
        x["id"], subject, x["number"], x["record_id"], x["status"], x["applied_on"],
        x["decided_on"],
    ) for x in state["repairs"]]
    active = {x["list"] for x in state["listings"] if x["status"] == "active"}
    subject_row = (
        subject, subject.split(":", 1)[0], state["kind"], state["name"], grade["grade"],
        grade["points"], grade["policy"],
        _JSON({"explanation": grade["explanation"], "override": grade["override"]}),
        "black" in active, "red" in active, len(records),
        sum(1 for r in state["records"] if r["public"]),
        sum(1 for o in state["objections"] if o["status"] == "accepted"),
        state["changes_on"],
    )
    return {"proj_subjects": [subject_row], "proj_records": records,
            "proj_listings": listings, "proj_objections": objections, "proj_repairs": repairs}


def states(subjects: dict[str, list[Fact]], policy_facts: Sequence[Fact], as_of: date
           ) -> Iterable[dict[str, Any]]:
    for subject, facts in subjects.items():
        yield subject_state(subject, facts, policy_facts, as_of, EVERYTHING)


class RowBuffer:
    """Rows gathered for many subjects, written with one multi-row insert per table."""

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self.tables = tables
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in tables}
        self.subjects: list[str] = []

    def add(self, state: dict[str, Any]) -> None:
        self.subjects.append(state["subject"])
        for name, rows in row_values_of(state).items():
            self.rows[name].extend(rows)

    def __len__(self) -> int:
        return len(self.subjects)

    def write(self, connection: Connection, *, replace: bool) -> None:
        """Insert the rows (first deleting what the subjects had, when ``replace``)."""
        if replace and self.subjects:
            for start in range(0, len(self.subjects), 500):
                chunk = self.subjects[start:start + 500]
                for table in self.tables.values():
                    connection.execute(delete(table).where(table.c.subject.in_(chunk)))
        for name, rows in self.rows.items():
            if rows:
                insert_rows(connection, self.tables[name], rows)
        self.rows = {name: [] for name in self.tables}
        self.subjects = []


def insert_rows(connection: Connection, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Insert complete rows (as ``row_values_of`` gives them: values in column order, days as
    ISO text) through the driver, as ``insert(table)`` with these rows' days as dates would
    store them (a test compares the two): SQLAlchemy's per-row parameter processing cost more
    than the rest of a rebuild's writing, and on PostgreSQL a multi-row INSERT's quoting of
    every value (``execute_values``) cost more than computing the rows; COPY takes them as
    text. SQLite's driver stores the ISO text and the booleans (as 1 and 0) as SQLAlchemy's
    types do, so the rows go as they are: converting days to dates and back cost 3 us an
    event of a rebuild. Elsewhere than SQLite and PostgreSQL, through SQLAlchemy. A value the
    database refuses raises SQLAlchemy's error, as ``insert(table)`` would."""
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        connection.execute(insert(table), as_python_values(table, rows))
        return
    columns = [column.name for column in table.columns]
    cursor = connection.connection.cursor()
    try:
        with _refusals_as_sqlalchemy_errors(table.name):
            if dialect == "sqlite":
                cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' * len(columns))})", rows)
            else:
                copy_rows(cursor, table.name, columns, rows)
    finally:
        cursor.close()


def as_python_values(table: Table, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows (values in column order) as SQLAlchemy's types take them: by column name, each
    day's ISO text as a ``date``."""
    columns = [column.name for column in table.columns]
    days = {column.name for column in table.columns if isinstance(column.type, Date)}
    return [{name: date.fromisoformat(value) if name in days and isinstance(value, str)
             else value for name, value in zip(columns, row, strict=True)} for row in rows]


@contextmanager
def _refusals_as_sqlalchemy_errors(table: str) -> Iterator[None]:
    """The driver's refusal of a value (too long, a duplicate key) as the SQLAlchemy error the
    projection runner records as a subject's fault."""
    try:
        yield
    except (sqlite3.IntegrityError, psycopg2.IntegrityError) as exc:
        raise IntegrityError(f"insert into {table}", None, exc) from exc
    except psycopg2.DataError as exc:
        raise DataError(f"insert into {table}", None, exc) from exc
