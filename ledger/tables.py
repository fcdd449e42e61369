"""The ledger's own tables beside eventsourcing's events table, written in the same transaction.

- ``ledger_log``: one row per stored event in notification order: its Merkle position and leaf hash,
  its aggregate and version, and the per-subject/time index used for time travel.
- ``ledger_tree``: the hash of every completed perfect subtree (levels 1 and up; level 0 is
  ``ledger_log.leaf_hash``), from which inclusion and consistency proofs are built.
- ``ledger_checkpoints``: signed checkpoints (C2SP signed notes) over the tree.
- ``ledger_chains``: each chain's length and head (``proofs.chain_map``: one chain per subject, one
  for the key registry, one for policies).
- ``ledger_map``: the chain map's nodes (level 0: bucket hashes; level 16: the root), only those
  not empty; the root goes into every checkpoint.

None of these is trusted by ``credit verify``: it recomputes them from the events and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    inspect,
    select,
)
from sqlalchemy.schema import CreateTable, DropIndex
from sqlalchemy_utils.types.uuid import UUIDType

# Stored like eventsourcing-sqlalchemy stores originator ids (16 bytes on SQLite, uuid on
# PostgreSQL), so the two tables join on them directly.
AggregateId = UUIDType(binary=True)

metadata = MetaData()

log = Table(
    "ledger_log",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("notification_id", BigInteger, nullable=False, unique=True),
    Column("originator_id", AggregateId, nullable=False),
    Column("originator_version", Integer, nullable=False),
    Column("stream", String(64), nullable=False),
    Column("subject", String(64), nullable=True),
    Column("recorded_at", DateTime, nullable=False),  # naive UTC
    Column("effective_at", DateTime, nullable=True),  # naive UTC
    Column("leaf_hash", LargeBinary(32), nullable=False),
)
# A subject's events in log order. It carries each event's notification id, so reading them
# (history, extracts, a rebuild's fill) visits the index and the events, never ledger_log's own
# rows: 2-2.5 us an event less of a rebuild's read at a million events on SQLite. Stores made
# before it carried the id get it from ``upgrade_subject_index``.
SUBJECT_INDEX = Index("ledger_log_subject_idx", log.c.subject, log.c.position,
                      log.c.notification_id)
Index("ledger_log_stream_idx", log.c.stream, log.c.position)

tree = Table(
    "ledger_tree",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("issued_at", DateTime, nullable=False),  # naive UTC
    Column("kid", String(64), nullable=False),
    Column("note", Text, nullable=False),
)


# Witnesses' cosignatures of checkpoints (proofs/cosignature.py): self-verifying signature
# lines, kept beside the note they cosign; not part of the signed log.
cosignatures = Table(
    "ledger_cosignatures",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("witness", String(200), primary_key=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # POSIX seconds, as the witness signed it
    Column("line", Text, nullable=False),
)

# RFC 3161 timestamp tokens of checkpoints (proofs/timestamps.py), by a TSA's clock.
timestamps = Table(
    "ledger_timestamps",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("gen_time", DateTime, nullable=False),  # naive UTC, the TSA's
    Column("token", LargeBinary, nullable=False),  # the DER TimeStampResponse
)

# Keyed by bucket first: a batch reads the chains of its buckets, then upserts those it extends,
# and both find them in one b-tree, the bucket's entries side by side (SQLite: the rows are the
# key's b-tree, no rowid table beside it). A chain's bucket is a function of its key, so the pair
# is unique exactly when the chain is. Stores made before get it from ``upgrade_chains_table``.
chains = Table(
    "ledger_chains",
    metadata,
    Column("chain", String(80), nullable=False),
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("head", LargeBinary(32), nullable=False),
    Column("position", BigInteger, nullable=False),  # of the chain's last event
    PrimaryKeyConstraint("bucket", "chain", name="ledger_chains_pkey"),
    sqlite_with_rowid=False,
)

chain_map = Table(
    "ledger_map",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)


def fetch_nodes(conn: Any, table: Table, wanted: Iterable[tuple[int, int]],
                chunk: int = 400) -> dict[tuple[int, int], bytes]:
    """The stored (level, idx) -> hash among ``wanted`` from a node table (``ledger_tree``,
    ``ledger_map``), in few statements: ``level IN (…) AND idx IN (…)`` probes the primary key
    on both databases (a row-value IN makes SQLite scan), and the few extra rows the cross
    product may bring are dropped."""
    wanted_set = set(wanted)
    levels = sorted({level for level, _ in wanted_set})
    idxs = sorted({idx for _, idx in wanted_set})
    found: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(idxs), chunk):
        rows = conn.execute(
            select(table.c.level, table.c.idx, table.c.hash)
            .where(table.c.level.in_(levels), table.c.idx.in_(idxs[start:start + chunk])))
        for level, idx, value in rows:
            at = (int(level), int(idx))
            if at in wanted_set:
                found[at] = bytes(value)
    return found


def upgrade_subject_index(engine: Any) -> bool:
    """Give a store whose subject index predates ``SUBJECT_INDEX`` the index as defined now;
    True if it did. Once per store, under the write lock (about a second at a million events);
    a crash between the drop and the create leaves no index, made by the next call."""
    wanted = [column.name for column in SUBJECT_INDEX.columns]
    with engine.begin() as conn:
        found = {index["name"]: index["column_names"]
                 for index in inspect(conn).get_indexes(log.name)}
        if found.get(SUBJECT_INDEX.name) == wanted:
            return False
        if SUBJECT_INDEX.name in found:
            conn.execute(DropIndex(SUBJECT_INDEX))
        SUBJECT_INDEX.create(conn)
    return True


def upgrade_chains_table(engine: Any) -> bool:
    """Give a store whose ``ledger_chains`` predates its key ``(bucket, chain)`` the table as
    defined now, in one transaction (its rows copied as they are; about a second at a million
    events); True if it did. The writers' upsert needs that key, so the ledger runs this
    before its first write."""
    wanted = [column.name for column in chains.primary_key.columns]

    def keyed_as_now(conn: Any) -> bool:
        return bool(inspect(conn).get_pk_constraint(chains.name)["constrained_columns"] == wanted)

    with engine.begin() as conn:
        if not inspect(conn).has_table(chains.name) or keyed_as_now(conn):
            return False
        # the write lock, then a second look: another process may have upgraded it meanwhile
        if conn.dialect.name == "sqlite":  # (a write makes SQLite lock; one transaction on)
            conn.exec_driver_sql("UPDATE ledger_chains SET bucket = bucket WHERE 0 = 1")
        else:
            conn.exec_driver_sql(f"LOCK TABLE {chains.name} IN ACCESS EXCLUSIVE MODE")
        if keyed_as_now(conn):
            return False
        if conn.dialect.name == "sqlite":
            twin = chains.to_metadata(MetaData(), name="ledger_chains_upgrade")
            conn.execute(CreateTable(twin))
            listed = ", ".join(column.name for column in chains.columns)
            conn.exec_driver_sql(f"INSERT INTO {twin.name} ({listed}) SELECT {listed} "
                                 f"FROM {chains.name} ORDER BY bucket, chain")
            conn.exec_driver_sql(f"DROP TABLE {chains.name}")
            conn.exec_driver_sql(f"ALTER TABLE {twin.name} RENAME TO {chains.name}")
        else:
            old = inspect(conn).get_pk_constraint(chains.name)["name"]
            conn.exec_driver_sql(f"ALTER TABLE {chains.name} DROP CONSTRAINT {old}")
            conn.exec_driver_sql(f"ALTER TABLE {chains.name} ADD CONSTRAINT ledger_chains_pkey "
                                 "PRIMARY KEY (bucket, chain)")
            conn.exec_driver_sql("DROP INDEX IF EXISTS ledger_chains_bucket_idx")
    return True


def events_table(name: str) -> Table:
    """eventsourcing-sqlalchemy's events table, as Core sees it, for readers that do not run
    the application (``credit verify`` must work on a store whose key registry is broken)."""
    return Table(
        name,
        MetaData(),
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("originator_id", AggregateId, nullable=False),
        Column("originator_version", BigInteger().with_variant(Integer(), "sqlite"),
               nullable=False),
        Column("topic", Text, nullable=False),
        Column("state", LargeBinary, nullable=False),
    )


def stored_nodes(conn: Any) -> Callable[[int, int], bytes]:
    """A node source over ``ledger_log`` and ``ledger_tree`` (for proofs)."""
    def node(level: int, index: int) -> bytes:
        if level == 0:
            value = conn.execute(
                select(log.c.leaf_hash).where(log.c.position == index)).scalar()
        else:
            value = conn.execute(
                select(tree.c.hash).where(tree.c.level == level, tree.c.idx == index)).scalar()
        if value is None:
            raise LookupError(f"the stored tree has no node at level {level}, index {index}")
        return bytes(value)
    return node

