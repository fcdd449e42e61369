"""The subjects projection: each subject's current state, as the reducer computes it, in rows.

The read model is a cache of ``domain.state.subject_state`` for the projection's day: the subject
row (name, grade and its explanation, list flags, counts, and the day its state next changes by
time alone), its records with their flags, listings, objections and repairs. A subject is
recomputed whenever one of its events arrives, and again on its ``changes_on`` day.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import psycopg2
from sqlalchemy import Date, Table, delete, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError

from domain.state import Fact, subject_state
from ledger.bulk import copy_rows

EVERYTHING = datetime(9999, 12, 31, tzinfo=UTC)  # facts are limited by log position instead


# One encoder of each kind, made once: ``json.dumps`` with any option set builds a new
# JSONEncoder per call, which cost as much as the encoding (same bytes either way).
_SORTED_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_JSON = json.JSONEncoder(ensure_ascii=False).encode


def rows_of(state: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The read-model rows of one subject's state, in the form the tables store them: days as
    ISO text (``2019-03-01``), as the reducer gives them and as SQLite keeps a date; booleans
    as ``bool``."""
    subject = state["subject"]
    grade = state["grade"]
    records = [{
        "id": r["id"], "subject": subject, "department": r["department"],
        "item_code": r["item_code"], "item_name_zh": r["item_name_zh"],
        "item_name_en": r["item_name_en"], "category": r["category"],
        "polarity": r["polarity"], "severity": r["severity"],
        "catalogue_version": r["catalogue_version"], "decision_number": r["decision_number"],
        "decision_date": r["decision_date"], "summary": r["summary"],
        "details": _SORTED_JSON(r["details"]),
        "status": r["status"], "public": r["public"], "shared": r["shared"],
        "under_objection": r["under_objection"], "corrected": r["corrected"],
        "repaired": r["repaired"], "disclosure_ended": r["disclosure_ended"],
        "revoked": r["revoked"], "disclosure_until": r["disclosure_until"],
    } for r in state["records"]]
    listings = [{
        "id": x["id"], "subject": subject, "number": x["number"], "list": x["list"],
        "authority": x["authority"], "legal_basis": x["legal_basis"], "status": x["status"],
        "start": x["start"], "planned_end": x["planned_end"],
        "ends_on": x["ends_on"], "removed_on": x["removed_on"],
        "measures": _JSON(x["measures"]),
    } for x in state["listings"]]
    objections = [{
        "id": o["id"], "subject": subject, "number": o["number"], "target": o["target"],
        "target_id": o["target_id"], "status": o["status"], "raised_on": o["raised_on"],
        "accepted_on": o["accepted_on"], "deadline": o["deadline"],
        "deadline_provisional": o["deadline_provisional"], "extended": o["extended"],
        "overdue": o["overdue"], "outcome": o["outcome"], "ruled_on": o["ruled_on"],
        "late": o["late"], "review": o["review"],
    } for o in state["objections"]]
    repairs = [{
        "id": x["id"], "subject": subject, "number": x["number"], "record_id": x["record_id"],
        "status": x["status"], "applied_on": x["applied_on"],
        "decided_on": x["decided_on"],
    } for x in state["repairs"]]
    active = {x["list"] for x in state["listings"] if x["status"] == "active"}
    subject_row = {
        "subject": subject, "scheme": subject.split(":", 1)[0], "kind": state["kind"],
        "name": state["name"], "grade": grade["grade"], "points": grade["points"],
        "grade_policy": grade["policy"],
        "grade_explanation": _JSON({"explanation": grade["explanation"],
                                    "override": grade["override"]}),
        "black_listed": "black" in active, "red_listed": "red" in active,
        "records": len(records), "public_records": sum(1 for r in records if r["public"]),
        "open_objections": sum(1 for o in objections if o["status"] == "accepted"),
        "changes_on": state["changes_on"],
    }
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
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
        self.subjects: list[str] = []

    def add(self, state: dict[str, Any]) -> None:
        self.subjects.append(state["subject"])
        for name, rows in rows_of(state).items():
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


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert complete rows (as ``rows_of`` gives them: days as ISO text) through the driver,
    as ``insert(table)`` with these rows' days as dates would store them (a test compares the
    two): SQLAlchemy's per-row parameter processing cost more than the rest of a rebuild's
    writing, and on PostgreSQL a multi-row INSERT's quoting of every value
    (``execute_values``) cost more than computing the rows; COPY takes them as text. SQLite's
    driver stores the ISO text and the booleans (as 1 and 0) as SQLAlchemy's types do, so the
    rows go as they are: converting days to dates and back cost 3 us an event of a rebuild.
    Elsewhere than SQLite and PostgreSQL, through SQLAlchemy. A value the database refuses
    raises SQLAlchemy's error, as ``insert(table)`` would."""
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        connection.execute(insert(table), as_python_values(table, rows))
        return
    columns = [column.name for column in table.columns]
    values_of = itemgetter(*columns)
    cursor = connection.connection.cursor()
    try:
        with _refusals_as_sqlalchemy_errors(table.name):
            if dialect == "sqlite":
                cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' * len(columns))})", list(map(values_of, rows)))
            else:
                copy_rows(cursor, table.name, columns, map(values_of, rows))
    finally:
        cursor.close()


def as_python_values(table: Table, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as SQLAlchemy's types take them: each day's ISO text as a ``date``."""
    days = [column.name for column in table.columns if isinstance(column.type, Date)]
    return [{**row, **{name: date.fromisoformat(row[name])
                       for name in days if isinstance(row[name], str)}} for row in rows]


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
