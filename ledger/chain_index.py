"""The chains and their map in the database: extended in the transaction that appends events.

``ledger.chains`` defines the hashes; this module keeps ``ledger_chains`` (each chain's length and
head) and ``ledger_map`` (the map's non-empty nodes) up to date and reads proofs from them. Per
batch it costs a handful of queries: the touched chains, the entries of their buckets, the
siblings on their paths, and two multi-row upserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy import select, tuple_

from ledger import chains, tables
from ledger.bulk import PAGE_SIZE, driver_errors
from ledger.merkle import hash_children

IN_CHUNK = 500

_CHAIN_COLUMNS = "chain, key_hash, bucket, length, head, position"
_CHAIN_UPSERT = ("ON CONFLICT (chain) DO UPDATE SET length = excluded.length, "
                 "head = excluded.head, position = excluded.position")
_NODE_UPSERT = "ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash"


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class ChainIndex:
    """Reads and extends the stored chains and map, inside the caller's transaction."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    # -- writing ------------------------------------------------------------------------------

    def append(self, tx: Any, appended: Sequence[tuple[str, int, bytes]]) -> bytes:
        """Extend chains by (chain key, log position, leaf hash) in log order; return the new
        map root. Four statements: read the touched buckets, upsert their chains, read the
        sibling nodes on their paths, upsert the new nodes."""
        if not appended:
            return self.root(tx)
        hkeys = {key: chains.key_hash(key) for key, _, _ in appended}
        buckets = sorted({chains.bucket_of(h) for h in hkeys.values()})
        c = tables.chains
        entries: dict[int, dict[bytes, tuple[int, bytes]]] = {b: {} for b in buckets}
        state: dict[str, tuple[int, bytes, int]] = {}
        for part in _chunks(buckets):
            for key, hkey, bucket, length, head, position in tx.execute(
                    select(c.c.chain, c.c.key_hash, c.c.bucket, c.c.length, c.c.head,
                           c.c.position).where(c.c.bucket.in_(part))):
                entries[bucket][bytes(hkey)] = (int(length), bytes(head))
                if key in hkeys:
                    state[key] = (int(length), bytes(head), int(position))
        for key, position, leaf in appended:
            length, head, _ = state.get(key, (0, chains.EMPTY_HEAD, -1))
            state[key] = (length + 1, chains.extend(head, leaf), position)
        rows = []
        for key, hkey in hkeys.items():
            length, head, position = state[key]
            bucket = chains.bucket_of(hkey)
            entries[bucket][hkey] = (length, head)
            rows.append((key, hkey, bucket, length, head, position))
        self._upsert_chains(tx, rows)
        return self._refold(tx, {b: chains.bucket_hash((h, n, x) for h, (n, x) in e.items())
                                 for b, e in entries.items()})

    def _refold(self, tx: Any, current: dict[int, bytes]) -> bytes:
        """Store the touched buckets' hashes and recompute their paths up to the root."""
        wanted: list[tuple[int, int]] = []
        indexes = set(current)
        for level in range(chains.DEPTH):
            wanted.extend((level, i ^ 1) for i in indexes if i ^ 1 not in indexes)
            indexes = {i >> 1 for i in indexes}
        stored = self._nodes(tx, wanted)
        written: list[tuple[int, int, bytes]] = []
        for level in range(chains.DEPTH):
            written.extend((level, idx, value) for idx, value in current.items())
            default = chains.DEFAULTS[level]
            parents: dict[int, bytes] = {}
            for idx in {i >> 1 for i in current}:
                left = current.get(2 * idx) or stored.get((level, 2 * idx), default)
                right = current.get(2 * idx + 1) or stored.get((level, 2 * idx + 1), default)
                parents[idx] = hash_children(left, right)
            current = parents
        root = current[0]
        written.append((chains.DEPTH, 0, root))
        self._upsert_nodes(tx, written)
        return root

    def _upsert_chains(self, tx: Any, rows: list[tuple[Any, ...]]) -> None:
        with driver_errors():
            cursor = tx.connection().connection.cursor()
            if self.dialect == "sqlite":
                cursor.executemany(f"INSERT INTO ledger_chains ({_CHAIN_COLUMNS}) "
                                   f"VALUES (?, ?, ?, ?, ?, ?) {_CHAIN_UPSERT}", rows)
            else:
                execute_values(cursor, f"INSERT INTO ledger_chains ({_CHAIN_COLUMNS}) VALUES %s "
                               f"{_CHAIN_UPSERT}", rows, page_size=PAGE_SIZE)

    def _upsert_nodes(self, tx: Any, rows: list[tuple[int, int, bytes]]) -> None:
        with driver_errors():
            cursor = tx.connection().connection.cursor()
            if self.dialect == "sqlite":
                cursor.executemany("INSERT INTO ledger_map (level, idx, hash) VALUES (?, ?, ?) "
                                   f"{_NODE_UPSERT}", rows)
            else:
                execute_values(cursor, f"INSERT INTO ledger_map (level, idx, hash) VALUES %s "
                               f"{_NODE_UPSERT}", rows, page_size=PAGE_SIZE)

    # -- reading ------------------------------------------------------------------------------

    def _nodes(self, conn: Any, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored map nodes among ``wanted``; an absent node is an empty subtree."""
        if len(wanted) <= IN_CHUNK:
            return self._nodes_at(conn, wanted)
        m = tables.chain_map
        by_level: dict[int, list[int]] = {}
        for level, idx in wanted:
            by_level.setdefault(level, []).append(idx)
        found: dict[tuple[int, int], bytes] = {}
        for level, idxs in by_level.items():
            for part in _chunks(sorted(idxs)):
                for idx, value in conn.execute(
                        select(m.c.idx, m.c.hash).where(m.c.level == level, m.c.idx.in_(part))):
                    found[(level, int(idx))] = bytes(value)
        return found

    def root(self, conn: Any) -> bytes:
        m = tables.chain_map
        value = conn.execute(select(m.c.hash).where(m.c.level == chains.DEPTH, m.c.idx == 0)
                             ).scalar()
        return chains.EMPTY_MAP_ROOT if value is None else bytes(value)

    def chain(self, conn: Any, key: str) -> tuple[int, bytes, int]:
        """(length, head, last position) of one chain; (0, empty head, -1) if it has no events."""
        c = tables.chains
        row = conn.execute(select(c.c.length, c.c.head, c.c.position)
                           .where(c.c.chain == key)).first()
        if row is None:
            return 0, chains.EMPTY_HEAD, -1
        return int(row[0]), bytes(row[1]), int(row[2])

    def proof(self, conn: Any, key: str) -> chains.MapProof:
        """The bucket entries and sibling path of a chain, as stored now."""
        c = tables.chains
        hkey = chains.key_hash(key)
        bucket = chains.bucket_of(hkey)
        entries = tuple(sorted(
            (bytes(h), int(n), bytes(head)) for h, n, head in conn.execute(
                select(c.c.key_hash, c.c.length, c.c.head).where(c.c.bucket == bucket))))
        wanted = chains.path_indexes(bucket)
        stored = self._nodes_at(conn, wanted)
        path = tuple(stored.get(at, chains.DEFAULTS[at[0]]) for at in wanted)
        return chains.MapProof(key, entries, path)

    def _nodes_at(self, conn: Any, wanted: Sequence[tuple[int, int]]
                  ) -> dict[tuple[int, int], bytes]:
        m = tables.chain_map
        if not wanted:
            return {}
        rows = conn.execute(select(m.c.level, m.c.idx, m.c.hash)
                            .where(tuple_(m.c.level, m.c.idx).in_(list(wanted))))
        return {(int(level), int(idx)): bytes(value) for level, idx, value in rows}
