"""Read-model tables, by generation, behind stable views.

Each projection writes physical tables named ``<table>_g<generation>``; readers use views named
``<table>`` that point at the live generation. A rebuild fills generation n+1 while generation n
keeps serving, then switches the views and the projection's position in one transaction.

The subjects projection's tables have no primary key: their keys (a subject, a record's id …)
are unique indexes, which a rebuild creates, with the other indexes, once its generation is
filled (all but those that lead with the subject, which its fill writes in key order). Kept up
row by row, the random ids' index cost a rebuild a quarter of its time at a million events;
built at once from the filled table, a second.

``proj_positions`` holds, per projection, its live generation, the last log position (or
checkpoint number) applied, and the day its time-dependent flags were computed for: written in the
same transaction as the rows, so every event is applied exactly once, also after a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from types import MappingProxyType

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

positions_metadata = MetaData()
positions = Table(
    "proj_positions",
    positions_metadata,
    Column("name", String(32), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("as_of", Date, nullable=True),
    Column("updated_at", DateTime, nullable=True),
)


# What a projection could not store (a poison event, a bug): recorded, skipped, shown by
# `credit project --status` and `credit verify --projections`; cleared when a rebuild stores it.
faults = Table(
    "proj_faults",
    positions_metadata,
    Column("projection", String(32), primary_key=True),
    Column("subject", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
)


def _subjects(md: MetaData, g: int) -> list[Table]:
    subjects = Table(
        f"proj_subjects_g{g}", md,
        Column("subject", String(64), nullable=False),
        Column("scheme", String(8), nullable=False),
        Column("kind", String(32), nullable=True),
        Column("name", String(200), nullable=True),
        Column("grade", String(2), nullable=True),
        Column("points", Integer, nullable=True),
        Column("grade_policy", String(32), nullable=True),
        Column("grade_explanation", Text, nullable=False),
        Column("black_listed", Boolean, nullable=False),
        Column("red_listed", Boolean, nullable=False),
        Column("records", Integer, nullable=False),
        Column("public_records", Integer, nullable=False),
        Column("open_objections", Integer, nullable=False),
        Column("changes_on", Date, nullable=True),
    )
    Index(f"ux_proj_subjects_g{g}_subject", subjects.c.subject, unique=True)
    Index(f"ix_proj_subjects_g{g}_name", subjects.c.name)
    Index(f"ix_proj_subjects_g{g}_changes_on", subjects.c.changes_on)
    records = Table(
        f"proj_records_g{g}", md,
        Column("id", String(36), nullable=False),
        Column("subject", String(64), nullable=False),
        Column("department", String(32), nullable=False),
        Column("item_code", String(32), nullable=False),
        Column("item_name_zh", String(100), nullable=True),
        Column("item_name_en", String(100), nullable=True),
        Column("category", String(16), nullable=True),
        Column("polarity", String(16), nullable=True),
        Column("severity", String(16), nullable=True),
        Column("catalogue_version", String(32), nullable=True),
        Column("decision_number", String(100), nullable=False),
        Column("decision_date", Date, nullable=False),
        Column("summary", Text, nullable=False),
        Column("details", Text, nullable=False),
        Column("status", String(20), nullable=False),
        Column("public", Boolean, nullable=False),
        Column("shared", Boolean, nullable=False),
        Column("under_objection", Boolean, nullable=False),
        Column("corrected", Boolean, nullable=False),
        Column("repaired", Boolean, nullable=False),
        Column("disclosure_ended", Boolean, nullable=False),
        Column("revoked", Boolean, nullable=False),
        Column("disclosure_until", Date, nullable=True),
    )
    Index(f"ux_proj_records_g{g}_id", records.c.id, unique=True)
    Index(f"ix_proj_records_g{g}_subject", records.c.subject)
    listings = Table(
        f"proj_listings_g{g}", md,
        Column("id", String(36), nullable=False),
        Column("subject", String(64), nullable=False),
        Column("number", String(64), nullable=False),
        Column("list", String(8), nullable=False),
        Column("authority", String(32), nullable=False),
        Column("legal_basis", Text, nullable=False),
        Column("status", String(10), nullable=False),
        Column("start", Date, nullable=False),
        Column("planned_end", Date, nullable=False),
        Column("ends_on", Date, nullable=False),
        Column("removed_on", Date, nullable=True),
        Column("measures", Text, nullable=False),
    )
    Index(f"ux_proj_listings_g{g}_id", listings.c.id, unique=True)
    Index(f"ix_proj_listings_g{g}_subject", listings.c.subject)
    Index(f"ix_proj_listings_g{g}_status", listings.c.list, listings.c.status)
    objections = Table(
        f"proj_objections_g{g}", md,
        Column("id", String(36), nullable=False),
        Column("subject", String(64), nullable=False),
        Column("number", String(64), nullable=False),
        Column("target", String(8), nullable=False),
        Column("target_id", String(36), nullable=False),
        Column("status", String(10), nullable=False),
        Column("raised_on", Date, nullable=False),
        Column("accepted_on", Date, nullable=True),
        Column("deadline", Date, nullable=True),
        Column("deadline_provisional", Boolean, nullable=False),
        Column("extended", Boolean, nullable=False),
        Column("overdue", Boolean, nullable=False),
        Column("outcome", String(20), nullable=True),
        Column("ruled_on", Date, nullable=True),
        Column("late", Boolean, nullable=False),
        Column("review", String(10), nullable=True),
    )
    Index(f"ux_proj_objections_g{g}_id", objections.c.id, unique=True)
    Index(f"ix_proj_objections_g{g}_queue", objections.c.status, objections.c.deadline)
    Index(f"ix_proj_objections_g{g}_subject", objections.c.subject)
    repairs = Table(
        f"proj_repairs_g{g}", md,
        Column("id", String(36), nullable=False),
        Column("subject", String(64), nullable=False),
        Column("number", String(64), nullable=False),
        Column("record_id", String(36), nullable=False),
        Column("status", String(10), nullable=False),
        Column("applied_on", Date, nullable=False),
        Column("decided_on", Date, nullable=True),
    )
    Index(f"ux_proj_repairs_g{g}_id", repairs.c.id, unique=True)
    Index(f"ix_proj_repairs_g{g}_queue", repairs.c.status, repairs.c.applied_on)
    Index(f"ix_proj_repairs_g{g}_subject", repairs.c.subject)
    return [subjects, records, listings, objections, repairs]


def _keys(md: MetaData, g: int) -> list[Table]:
    return [Table(
        f"proj_keys_g{g}", md,
        Column("kid", String(64), primary_key=True),
        Column("authority", String(32), nullable=False),
        Column("authority_kind", String(16), nullable=False),
        Column("authority_name_zh", String(100), nullable=False),
        Column("fingerprint", String(16), nullable=False),
        Column("public_key", String(64), nullable=False),
        Column("valid_from", DateTime, nullable=False),
        Column("expires_at", DateTime, nullable=True),
        Column("retired_at", DateTime, nullable=True),
        Column("revoked_at", DateTime, nullable=True),
        Column("status", String(10), nullable=False),
    )]


def _checkpoints(md: MetaData, g: int) -> list[Table]:
    return [Table(
        f"proj_checkpoints_g{g}", md,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("tree_size", BigInteger, nullable=False),
        Column("root_hash", String(64), nullable=False),
        Column("issued_at", DateTime, nullable=False),
        Column("kid", String(64), nullable=False),
    )]


TABLES: dict[str, Callable[[MetaData, int], list[Table]]] = {
    "subjects": _subjects,
    "keys": _keys,
    "checkpoints": _checkpoints,
}


@cache
def tables_of(name: str, generation: int) -> Mapping[str, Table]:
    """The physical tables of one generation, by their view name (``proj_records`` …). Made
    once per process: building them is a cost per catch-up step, and the same Table objects
    let SQLAlchemy reuse its compiled statements."""
    built = TABLES[name](MetaData(), generation)
    return MappingProxyType({t.name.rsplit("_g", 1)[0]: t for t in built})
