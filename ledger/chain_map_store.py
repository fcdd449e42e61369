"""The chains and their map in the database: extended in the transaction that appends events.

``proofs.chain_map`` defines the hashes; this module keeps ``ledger_chains`` (each chain's length and
head) and ``ledger_map`` (the map's non-empty nodes) up to date and reads proofs from them. Per
batch it costs a handful of queries: the touched chains, the entries of their buckets, the
siblings on their paths, and two multi-row upserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select

from ledger import tables
from ledger.bulk import driver_errors, upsert_rows
from proofs import chain_map
from proofs.merkle import hash_children

IN_CHUNK = 500
BLOCK_LEVEL = 8  # stored: bucket hashes (level 0) and levels 8-16; 1-7 recomputed per block

_CHAIN_COLUMNS = "chain, key_hash, bucket, length, head, position"
_CHAIN_UPSERT = ("ON CONFLICT (bucket, chain) DO UPDATE SET length = excluded.length, "
                 "head = excluded.head, position = excluded.position")
_NODE_UPSERT = "ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash"


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class ChainMapStore:
    """Reads and extends the stored chains and map, inside the caller's transaction.

    A writer keeps what it read and wrote (bucket entries, map nodes) in memory while it is the
    only writer: the cache is tagged with the log size after its own last commit, and dropped
    when a write finds another size (someone else wrote) or when a transaction rolls back. So a
    bulk import reads each bucket and node at most once; a one-off command reads what it needs.
    """

    MAX_CACHED_BYTES = 64 << 20  # packed entries; beyond it, start again

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        # Flat dicts of ints and bytes only: the garbage collector does not track them, so a
        # big cache costs no collection time.
        self._buckets: dict[int, bytes] = {}  # bucket -> packed entries (chain_map.pack_entries)
        self._nodes_cache: dict[int, bytes] = {}  # level << 20 | index -> hash
        self._blocks: set[int] = set()  # blocks whose levels 0-7 are all in the cache
        self._loading: set[int] = set()  # blocks this write loaded, cached on commit
        self._cached_bytes = 0
        self._valid_at: int | None = None
        self._staged: tuple[dict[int, bytes], dict[int, bytes]] | None = None

    # -- the cache's life -------------------------------------------------------------------

    def begin(self, size: int) -> None:
        """A write starts on a log of ``size`` events: keep the cache only if it is ours."""
        if self._valid_at != size:
            self.discard()

    def committed(self, size: int) -> None:
        """The write's transaction committed, leaving a log of ``size`` events."""
        if self._staged is not None:
            buckets, nodes = self._staged
            for bucket, packed in buckets.items():
                self._cached_bytes += len(packed) - len(self._buckets.get(bucket, b""))
                self._buckets[bucket] = packed
            self._nodes_cache.update(nodes)
            self._blocks |= self._loading
            self._loading = set()
            self._staged = None
        if self._cached_bytes > self.MAX_CACHED_BYTES:
            self.discard()
        self._valid_at = size

    def discard(self) -> None:
        self._buckets.clear()
        self._nodes_cache.clear()
        self._blocks = set()
        self._loading = set()
        self._cached_bytes = 0
        self._valid_at = None
        self._staged = None

    # -- writing ------------------------------------------------------------------------------

    def append(self, tx: Any, appended: Sequence[tuple[str, int, bytes]]) -> bytes:
        """Extend chains by (chain key, log position, leaf hash) in log order; return the new
        map root. At most four statements: read the touched buckets, upsert their chains,
        read the sibling nodes on their paths, upsert the new nodes."""
        if not appended:
            return self.root(tx)
        hkeys = {key: chain_map.key_hash(key) for key, _, _ in appended}
        touched = {chain_map.bucket_of(h) for h in hkeys.values()}
        cached = self._buckets
        entries = {b: chain_map.unpack_entries(cached[b]) for b in touched if b in cached}
        entries.update(self._read_buckets(tx, sorted(b for b in touched if b not in cached)))
        heads: dict[str, tuple[int, bytes, int]] = {}
        extend = chain_map.extend
        for key, position, leaf in appended:
            hkey = hkeys[key]
            bucket = entries[(hkey[0] << 8) | hkey[1]]
            length, head = bucket.get(hkey, (0, chain_map.EMPTY_HEAD))
            bucket[hkey] = (length + 1, extend(head, leaf))
            heads[key] = (length + 1, bucket[hkey][1], position)
        self._upsert_chains(tx, [(key, hkeys[key], chain_map.bucket_of(hkeys[key]), *heads[key])
                                 for key in heads])
        packed = {b: chain_map.pack_entries(e) for b, e in entries.items()}
        root, nodes = self._refold(tx, {b: chain_map.packed_bucket_hash(p) for b, p in packed.items()})
        self._staged = (packed, nodes)
        return root

    def _read_buckets(self, tx: Any, buckets: Sequence[int]
                      ) -> dict[int, dict[bytes, tuple[int, bytes]]]:
        # through the driver's cursor: a batch reads a thousand buckets and more, and
        # SQLAlchemy's result rows cost more than the query
        found: dict[int, dict[bytes, tuple[int, bytes]]] = {b: {} for b in buckets}
        mark = "?" if self.dialect == "sqlite" else "%s"
        with driver_errors():
            cursor = tx.connection().connection.cursor()
            for part in _chunks(buckets):
                cursor.execute("SELECT bucket, key_hash, length, head FROM ledger_chains "
                               f"WHERE bucket IN ({', '.join([mark] * len(part))})", tuple(part))
                for bucket, hkey, length, head in cursor.fetchall():
                    found[bucket][bytes(hkey)] = (int(length), bytes(head))
        return found

    def _refold(self, tx: Any, current: dict[int, bytes]
                ) -> tuple[bytes, dict[int, bytes]]:
        """Recompute the touched buckets' paths up to the root; store the bucket hashes and
        the nodes from level 8 up (levels 1-7 are recomputed from a block's 256 buckets when
        needed: storing them would be six rows more per bucket written)."""
        # Nodes by level << 20 | index: this write's (loaded blocks, siblings read, new
        # nodes), looked up before the cache of earlier writes.
        overlay = self._load_blocks(tx, {b >> BLOCK_LEVEL for b in current})
        cache = self._nodes_cache
        unknown = []
        indexes = {b >> BLOCK_LEVEL for b in current}
        for level in range(BLOCK_LEVEL, chain_map.DEPTH):
            for idx in indexes:
                key = level << 20 | (idx ^ 1)
                if (idx ^ 1) not in indexes and key not in overlay and key not in cache:
                    unknown.append((level, idx ^ 1))
            indexes = {i >> 1 for i in indexes}
        read = self._nodes(tx, unknown)
        for level, idx in unknown:
            overlay[level << 20 | idx] = read.get((level, idx), chain_map.DEFAULTS[level])
        written: list[tuple[int, int, bytes]] = []
        level_nodes = current
        for level in range(chain_map.DEPTH):
            shift = level << 20
            for idx, value in level_nodes.items():
                overlay[shift | idx] = value
            if level == 0 or level >= BLOCK_LEVEL:
                written.extend((level, idx, value) for idx, value in level_nodes.items())
            default = chain_map.DEFAULTS[level]
            parents: dict[int, bytes] = {}
            for idx in {i >> 1 for i in level_nodes}:
                left_key, right_key = shift | (2 * idx), shift | (2 * idx + 1)
                left = overlay.get(left_key) or cache.get(left_key) or default
                right = overlay.get(right_key) or cache.get(right_key) or default
                parents[idx] = hash_children(left, right)
            level_nodes = parents
        root = level_nodes[0]
        overlay[chain_map.DEPTH << 20] = root
        written.append((chain_map.DEPTH, 0, root))
        self._upsert_nodes(tx, written)
        return root, overlay

    def _load_blocks(self, tx: Any, blocks: set[int]) -> dict[int, bytes]:
        """Levels 0-7 of every block not yet in the cache: its 256 stored bucket hashes and the
        subtree recomputed from them (as an overlay, cached on commit)."""
        missing = sorted(blocks - self._blocks)
        overlay: dict[int, bytes] = {}
        if not missing:
            return overlay
        m = tables.chain_map
        query = select(m.c.idx, m.c.hash).where(m.c.level == 0)
        if len(missing) <= 16:
            ranges = [m.c.idx.between(b << BLOCK_LEVEL, ((b + 1) << BLOCK_LEVEL) - 1)
                      for b in missing]
            query = query.where(or_(*ranges))
        leaves: dict[int, dict[int, bytes]] = {b: {} for b in missing}
        for idx, value in tx.execute(query):
            block = int(idx) >> BLOCK_LEVEL
            if block in leaves:
                leaves[block][int(idx)] = bytes(value)
        for block, level_nodes in leaves.items():
            for level in range(BLOCK_LEVEL):
                overlay.update((level << 20 | idx, value) for idx, value in level_nodes.items())
                default = chain_map.DEFAULTS[level]
                parents: dict[int, bytes] = {}
                for idx in {i >> 1 for i in level_nodes}:
                    parents[idx] = hash_children(level_nodes.get(2 * idx, default),
                                                 level_nodes.get(2 * idx + 1, default))
                level_nodes = parents
            self._loading.add(block)
        return overlay

    def _upsert_chains(self, tx: Any, rows: list[tuple[Any, ...]]) -> None:
        with driver_errors():
            cursor = tx.connection().connection.cursor()
            if self.dialect == "sqlite":
                cursor.executemany(f"INSERT INTO ledger_chains ({_CHAIN_COLUMNS}) "
                                   f"VALUES (?, ?, ?, ?, ?, ?) {_CHAIN_UPSERT}", rows)
            else:
                upsert_rows(cursor, "ledger_chains", _CHAIN_COLUMNS.split(", "), rows,
                            _CHAIN_UPSERT)

    def _upsert_nodes(self, tx: Any, rows: list[tuple[int, int, bytes]]) -> None:
        with driver_errors():
            cursor = tx.connection().connection.cursor()
            if self.dialect == "sqlite":
                cursor.executemany("INSERT INTO ledger_map (level, idx, hash) VALUES (?, ?, ?) "
                                   f"{_NODE_UPSERT}", rows)
            else:
                upsert_rows(cursor, "ledger_map", ("level", "idx", "hash"), rows, _NODE_UPSERT)

    # -- reading ------------------------------------------------------------------------------

    def _nodes(self, conn: Any, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored map nodes among ``wanted``; an absent node is an empty subtree."""
        return tables.fetch_nodes(conn, tables.chain_map, wanted) if wanted else {}

    def root(self, conn: Any) -> bytes:
        cached = (self._nodes_cache.get(chain_map.DEPTH << 20)
                  if self._valid_at is not None else None)
        if cached is not None:
            return cached
        m = tables.chain_map
        value = conn.execute(select(m.c.hash).where(m.c.level == chain_map.DEPTH, m.c.idx == 0)
                             ).scalar()
        return chain_map.EMPTY_MAP_ROOT if value is None else bytes(value)

    def chain(self, conn: Any, key: str) -> tuple[int, bytes, int]:
        """(length, head, last position) of one chain; (0, empty head, -1) if it has no events."""
        c = tables.chains
        bucket = chain_map.bucket_of(chain_map.key_hash(key))
        row = conn.execute(select(c.c.length, c.c.head, c.c.position)
                           .where(c.c.bucket == bucket, c.c.chain == key)).first()
        if row is None:
            return 0, chain_map.EMPTY_HEAD, -1
        return int(row[0]), bytes(row[1]), int(row[2])

    def proof(self, conn: Any, key: str) -> chain_map.MapProof:
        """The bucket entries and sibling path of a chain, as stored now."""
        c = tables.chains
        hkey = chain_map.key_hash(key)
        bucket = chain_map.bucket_of(hkey)
        entries = tuple(sorted(
            (bytes(h), int(n), bytes(head)) for h, n, head in conn.execute(
                select(c.c.key_hash, c.c.length, c.c.head).where(c.c.bucket == bucket))))
        wanted = chain_map.path_indexes(bucket)
        block = bucket >> BLOCK_LEVEL
        m = tables.chain_map
        level_nodes = {int(idx): bytes(value) for idx, value in conn.execute(
            select(m.c.idx, m.c.hash).where(
                m.c.level == 0,
                m.c.idx.between(block << BLOCK_LEVEL, ((block + 1) << BLOCK_LEVEL) - 1)))}
        lower: dict[tuple[int, int], bytes] = {}
        for level in range(BLOCK_LEVEL):
            lower.update(((level, idx), value) for idx, value in level_nodes.items())
            default = chain_map.DEFAULTS[level]
            level_nodes = {idx: hash_children(level_nodes.get(2 * idx, default),
                                              level_nodes.get(2 * idx + 1, default))
                           for idx in {i >> 1 for i in level_nodes}}
        upper = self._nodes(conn, [at for at in wanted if at[0] >= BLOCK_LEVEL])
        path = tuple((lower if at[0] < BLOCK_LEVEL else upper).get(at, chain_map.DEFAULTS[at[0]])
                     for at in wanted)
        return chain_map.MapProof(key, entries, path)
