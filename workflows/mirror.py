"""``credit mirror``: follow a remote ledger through its tiles (FORMAT.md §11) and keep a verified
copy — what an upper-level platform (Hangzhou, Zhejiang) runs to receive Lin'an's records.

Each sync reads the log's latest checkpoint, fetches the entries it has not got, and only then
keeps them, in one transaction, if all of this holds (else MirrorRefused names the first fact
that failed, and the copy stays at the last checkpoint it verified):

1. the checkpoint is a signed note of the mirrored origin, not smaller than the copy (a rollback)
   and not older in time;
2. every entry is readable leaf bytes (§3) and the entries served are exactly those the
   checkpoint counts;
3. the key registry replayed from the key events (§4) starts from the trusted platform key;
4. every event's envelope, key and signature hold (§1, §2) — also the events kept before, when a
   key event of this sync revokes or retires their key from a time before they were signed;
5. every aggregate's versions run 1, 2, 3 … across the whole copy;
6. the checkpoint's signature holds with a platform key of the registry valid at its time, and
   its root is the root recomputed from the copy's leaves and the new ones — so the new log
   extends the one the copy verified (a fork or a rewritten history fails here);
7. its ``chains`` line is the chain map (§7) recomputed from every entry of the copy: each event
   extends its aggregate's subject's chain (named by the aggregate's first event), so a
   checkpoint whose map leaves an event out of its chain fails here.

Events are numbered as the mirror sees them: position + 1 (the notification id of a store
without gaps). The mirror's tables (``mirror_*``) may share a database with nothing else."""

from __future__ import annotations

import multiprocessing
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from domain.clock import naive_utc
from domain.state import stream_of
from keys.registry import KeyRegistry
from keys.signer import fingerprint, public_key_from_pem
from ledger.storage import prepare_database
from proofs import chain_map, envelope, merkle
from proofs.checkpoint import Checkpoint, parse_checkpoint
from proofs.checks import (
    EventChecker,
    Row,
    check_rows_in_worker,
    init_worker,
    registry_key,
    subject_named,
    verify_checkpoint,
)
from proofs.failures import RegistryInvalid, VerificationFailure, VersionsBroken
from proofs.registry_events import REGISTRY_TOPICS
from proofs.registry_replay import RegistryReplay
from workflows.tiles import WIDTH, format_index

LEAF_PREFIX = b"credit-ledger/leaf/v1\n"
PROCESSES_FROM = 20_000  # rows; fewer are checked here (starting workers costs about a second)
CHUNK = 2000
Fetch = Callable[[str], bytes | None]  # a path under the log's prefix -> body, None if 404

metadata = MetaData()
entries = Table(
    "mirror_entries", metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("originator_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("topic", Text, nullable=False),
    Column("kid", String(64), nullable=False),
    Column("signed_at", DateTime, nullable=False),  # naive UTC
    Column("chain", Text, nullable=False),  # the chain it extends (FORMAT.md §7)
    Column("leaf", LargeBinary, nullable=False),
)
Index("mirror_entries_aggregate_idx", entries.c.originator_id, entries.c.version, unique=True)
Index("mirror_entries_kid_idx", entries.c.kid, entries.c.signed_at)
chains = Table(
    "mirror_chains", metadata,
    Column("key_hash", LargeBinary(32), primary_key=True),
    Column("length", BigInteger, nullable=False),
    Column("head", LargeBinary(32), nullable=False),
)
checkpoints = Table(
    "mirror_checkpoints", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("fetched_at", DateTime, nullable=False),  # naive UTC
)
state = Table(
    "mirror_state", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row
    Column("origin", Text, nullable=False),
    Column("trusted", LargeBinary(32), nullable=False),  # the platform's first public key
    Column("size", BigInteger, nullable=False),
    Column("edge", LargeBinary, nullable=False),  # the compact range's hashes, concatenated
)


class MirrorRefused(Exception):
    """The remote log failed a check; ``failures`` are all that failed in this sync."""

    def __init__(self, reason: str, failures: Sequence[VerificationFailure] = ()) -> None:
        super().__init__(reason)
        self.failures = list(failures)


class MirrorUnavailable(Exception):
    """The remote log could not be read (network, HTTP error): nothing was checked or kept."""


@dataclass
class SyncReport:
    tree_size: int
    added: int
    root_hash: bytes
    checkpoint: str


@dataclass
class _Entry:
    position: int
    oid: str
    version: int
    topic: str
    state: bytes
    leaf: bytes
    kid: str = ""
    signed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    chain: str = ""

    @property
    def nid(self) -> int:
        return self.position + 1


def trusted_key(path: Path) -> bytes:
    """The platform public key in a PEM file; MirrorRefused naming the file if it is not one."""
    try:
        return public_key_from_pem(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise MirrorRefused(f"{path}: not a PEM Ed25519 public key ({exc})") from None


def http_fetch(base_url: str, timeout: float = 30.0) -> Fetch:
    """Fetch paths under a tlog-tiles prefix over HTTP(S)."""
    prefix = base_url.rstrip("/") + "/"

    def fetch(path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(prefix + path, timeout=timeout) as answer:
                body: bytes = answer.read()
                return body
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise MirrorUnavailable(f"{prefix}{path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MirrorUnavailable(f"{prefix}{path}: {reason}") from None
    return fetch


def parse_entry(position: int, leaf: bytes) -> _Entry:
    """Leaf bytes (FORMAT.md §3) as an event; MirrorRefused if they are not."""
    if not leaf.startswith(LEAF_PREFIX):
        raise MirrorRefused(f"entry {position}: not the leaf bytes of an event")
    parts = leaf[len(LEAF_PREFIX):].split(b"\n", 3)
    try:
        oid, version, topic, stored = parts
        text = version.decode("ascii")
        if not text.isdigit() or text != str(int(text)):
            raise ValueError(f"version {text!r}")
        entry = _Entry(position, oid.decode("ascii"), int(text), topic.decode("utf-8"), stored,
                       leaf)
        sealed = envelope.decode(stored)
        entry.kid, entry.signed_at = sealed.kid, sealed.recorded_at
    except ValueError as exc:
        raise MirrorRefused(f"entry {position}: not readable as an event: {exc}") from None
    if envelope.leaf_bytes(entry.oid, entry.version, entry.topic, entry.state) != leaf:
        raise MirrorRefused(f"entry {position}: its leaf bytes are not written as §3 writes them")
    return entry


class Mirror:
    """A verified copy of one remote log, in the database at ``url``."""

    def __init__(self, url: str, trusted: bytes | None = None) -> None:
        self.engine: Engine = create_engine(prepare_database(url))
        metadata.create_all(self.engine, checkfirst=True)
        self.trusted = trusted
        # the chain map as of the copy's size, kept between syncs of this process (a monitor
        # verifies every new checkpoint: loading and folding every chain each time is the cost)
        self._heads: tuple[int, chain_map.ChainMap] | None = None
        self._registry: tuple[int, RegistryReplay] | None = None  # likewise, the key registry

    def close(self) -> None:
        self.engine.dispose()

    # -- what the copy holds --------------------------------------------------------------------

    def status(self) -> dict[str, object] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(state)).mappings().first()
            last = conn.execute(select(checkpoints.c.note).order_by(checkpoints.c.seq.desc())
                                .limit(1)).scalar()
        if row is None:
            return None
        return {"origin": row["origin"], "tree_size": int(row["size"]),
                "trusted": fingerprint(bytes(row["trusted"])), "checkpoint": last}

    def verified(self, body: str) -> bool:
        """Whether the copy verified a checkpoint with this note body (its lines, each ending in
        a newline: tree and chains)."""
        size = body.split("\n", 2)[1] if body.count("\n") >= 2 else ""
        if not size.isdigit():
            return False
        with self.engine.connect() as conn:
            notes = conn.execute(select(checkpoints.c.note)
                                 .where(checkpoints.c.tree_size == int(size))).scalars()
            return any(str(note).startswith(body + "\n") for note in notes)

    def _entries(self, conn: Connection, where: object = None) -> Iterator[_Entry]:
        query = select(entries.c.position, entries.c.leaf).order_by(entries.c.position)
        if where is not None:
            query = query.where(where)  # type: ignore[arg-type]
        for position, leaf in conn.execute(query):
            yield parse_entry(int(position), bytes(leaf))

    # -- one sync -------------------------------------------------------------------------------

    def sync(self, fetch: Fetch, progress: Callable[[int], None] | None = None) -> SyncReport:
        """Verify what the remote log added since the last sync and keep it (module docstring)."""
        note_bytes = fetch("checkpoint")
        if note_bytes is None:
            raise MirrorRefused("the log serves no checkpoint")
        note = note_bytes.decode("utf-8", errors="replace")
        try:
            checkpoint = parse_checkpoint(note)
        except ValueError as exc:
            raise MirrorRefused(f"the log's checkpoint is not a signed note: {exc}") from None
        with self.engine.begin() as conn:
            held = conn.execute(select(state)).mappings().first()
            if held is None:
                if self.trusted is None:
                    raise MirrorRefused("a first sync needs the platform's public key (--trust)")
                origin, trusted, size, edge = checkpoint.origin, self.trusted, 0, b""
            else:
                origin, trusted = str(held["origin"]), bytes(held["trusted"])
                size, edge = int(held["size"]), bytes(held["edge"])
                if self.trusted is not None and self.trusted != trusted:
                    raise MirrorRefused("the copy trusts another platform key than the one given")
            previous = self._last_checkpoint(conn)
            self._check_against_copy(checkpoint, origin, size, previous)
            cached, self._registry = self._registry, None  # taken, as the chain map is
            replay = cached[1] if cached is not None and cached[0] == size else self._replay(conn)
            tree = merkle.CompactRange(size, [edge[i:i + 32] for i in range(0, len(edge), 32)])
            fresh = list(self._fetch_entries(fetch, size, checkpoint.tree_size, progress))
            for entry in fresh:
                tree.append(merkle.hash_leaf(entry.leaf))
            failures = self._check_events(conn, replay, fresh, trusted)
            if failures:
                raise MirrorRefused(f"{len(failures)} check(s) failed: {failures[0]}", failures)
            try:
                verify_checkpoint(note, registry_key(replay.registry, checkpoint.tree_size),
                                  "the log's checkpoint")
            except VerificationFailure as exc:
                raise MirrorRefused(str(exc), [exc]) from None
            if tree.root() != checkpoint.root_hash:
                raise MirrorRefused(
                    f"the log's checkpoint (size {checkpoint.tree_size}) signs a root that is not "
                    f"the root of the copy's {size} entries and the {len(fresh)} served after "
                    "them: the log was forked or rewritten")
            heads = self._chain_map(conn, fresh, size)
            if heads.root() != checkpoint.chain_root:
                raise MirrorRefused(
                    f"the log's checkpoint (size {checkpoint.tree_size}) signs a chain map that "
                    "is not the one recomputed from its entries: an event is left out of its "
                    "subject's chain, or one is added")
            self._keep(conn, fresh, checkpoint, note, origin, trusted, tree, held is None)
            self._keep_chains(conn, heads, {e.chain for e in fresh})
        self._heads = (checkpoint.tree_size, heads)  # committed: what the copy now holds
        self._registry = (checkpoint.tree_size, replay)
        return SyncReport(checkpoint.tree_size, len(fresh), checkpoint.root_hash, note)

    def _last_checkpoint(self, conn: Connection) -> Checkpoint | None:
        note = conn.execute(select(checkpoints.c.note).order_by(checkpoints.c.seq.desc())
                            .limit(1)).scalar()
        return None if note is None else parse_checkpoint(str(note))

    @staticmethod
    def _check_against_copy(checkpoint: Checkpoint, origin: str, size: int,
                            previous: Checkpoint | None) -> None:
        if checkpoint.origin != origin:
            raise MirrorRefused(f"the log's checkpoint is of origin {checkpoint.origin!r}, the "
                                f"copy mirrors {origin!r}")
        if checkpoint.tree_size < size:
            raise MirrorRefused(f"the log's checkpoint has size {checkpoint.tree_size}, smaller "
                                f"than the {size} entries the copy verified: a rollback")
        if previous is not None and checkpoint.issued_at < previous.issued_at:
            raise MirrorRefused(f"the log's checkpoint is dated {checkpoint.issued_at.isoformat()}"
                                f", before the one the copy holds "
                                f"({previous.issued_at.isoformat()})")

    def _replay(self, conn: Connection) -> RegistryReplay:
        """The key registry from the key events the copy holds."""
        replay = RegistryReplay()
        for entry in self._entries(conn, entries.c.topic.in_(REGISTRY_TOPICS)):
            replay.feed(entry.nid, entry.oid, entry.version, entry.topic, entry.state)
        return replay

    def _fetch_entries(self, fetch: Fetch, start: int, end: int,
                       progress: Callable[[int], None] | None) -> Iterator[_Entry]:
        """Entries ``start`` … ``end`` - 1, bundle by bundle (full ones where the tree has them)."""
        for bundle in range(start // WIDTH, (end + WIDTH - 1) // WIDTH):
            first = bundle * WIDTH
            width = min(WIDTH, end - first)
            path = f"tile/entries/{format_index(bundle)}" + ("" if width == WIDTH
                                                             else f".p/{width}")
            body = fetch(path)
            if body is None:
                raise MirrorRefused(f"the log does not serve {path}, which its checkpoint of "
                                    f"size {end} requires")
            leaves = _split_bundle(body, path)
            if len(leaves) != width:
                raise MirrorRefused(f"{path} holds {len(leaves)} entries, not {width}")
            for offset, leaf in enumerate(leaves):
                if first + offset >= start:
                    yield parse_entry(first + offset, leaf)
            if progress is not None:
                progress(first + width)

    def _check_events(self, conn: Connection, replay: RegistryReplay, fresh: list[_Entry],
                      trusted: bytes) -> list[VerificationFailure]:
        before = _limits(replay)
        for entry in fresh:
            if entry.topic in REGISTRY_TOPICS:
                replay.feed(entry.nid, entry.oid, entry.version, entry.topic, entry.state)
        failures: list[VerificationFailure] = list(replay.failures)
        if replay.genesis_key is not None and replay.genesis_key != trusted:
            failures.append(RegistryInvalid(
                f"the log's first platform key {fingerprint(replay.genesis_key)} is not the "
                f"trusted one ({fingerprint(trusted)})"))
        checker = EventChecker(replay.registry)
        failures += check_signatures(replay.registry, [
            (e.nid, e.oid, e.version, e.topic, e.state) for e in fresh])
        # a key revoked or retired from a time before events kept earlier were signed
        for kid, since in _limits(replay).items():
            if before.get(kid) == since:
                continue
            for kept in self._entries(conn, (entries.c.kid == kid)
                                      & (entries.c.signed_at >= naive_utc(since))):
                failed = checker.check(kept.nid, kept.oid, kept.version, kept.topic, kept.state)
                if failed is not None:
                    failures.append(failed)
        failures += self._check_versions(conn, fresh)
        return failures

    def _chain_map(self, conn: Connection, fresh: list[_Entry], size: int
                   ) -> chain_map.ChainMap:
        """The copy's chains, extended by the fresh entries (each entry's ``chain`` set)."""
        cached, self._heads = self._heads, None  # taken: a refused sync must not leave it changed
        if cached is not None and cached[0] == size:
            heads = cached[1]
        else:
            heads = chain_map.ChainMap()
            heads.load((bytes(k), int(n), bytes(h)) for k, n, h in conn.execute(
                select(chains.c.key_hash, chains.c.length, chains.c.head)))
        known = self._chains_of(conn, {e.oid for e in fresh if e.version > 1})
        for entry in fresh:
            if entry.version == 1:
                known[entry.oid] = chain_of_first(entry)
            entry.chain = known.get(entry.oid, "?")
            heads.append(entry.chain, merkle.hash_leaf(entry.leaf))
        return heads

    @staticmethod
    def _chains_of(conn: Connection, oids: set[str]) -> dict[str, str]:
        wanted = sorted(oids)
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            found.update({str(oid): str(chain) for oid, chain in conn.execute(
                select(entries.c.originator_id, entries.c.chain).where(
                    entries.c.originator_id.in_(wanted[start:start + 500]),
                    entries.c.version == 1))})
        return found

    @staticmethod
    def _keep_chains(conn: Connection, heads: chain_map.ChainMap, changed: set[str]) -> None:
        """Write the chains the fresh entries extended."""
        hkeys = sorted(chain_map.key_hash(key) for key in changed)
        for start in range(0, len(hkeys), 500):
            conn.execute(delete(chains).where(chains.c.key_hash.in_(hkeys[start:start + 500])))
        rows = []
        for key in changed:
            length, head = heads.chain(key)
            rows.append({"key_hash": chain_map.key_hash(key), "length": length, "head": head})
        for start in range(0, len(rows), 1000):
            conn.execute(insert(chains), rows[start:start + 1000])

    @staticmethod
    def _check_versions(conn: Connection, fresh: list[_Entry]) -> list[VerificationFailure]:
        wanted = sorted({entry.oid for entry in fresh})
        last: dict[str, int] = dict.fromkeys(wanted, 0)
        for start in range(0, len(wanted), 500):  # the copy's last version of each, in chunks
            last.update({str(oid): int(version) for oid, version in conn.execute(
                select(entries.c.originator_id, func.max(entries.c.version))
                .where(entries.c.originator_id.in_(wanted[start:start + 500]))
                .group_by(entries.c.originator_id))})
        failures: list[VerificationFailure] = []
        for entry in fresh:
            if entry.version != last[entry.oid] + 1:
                failures.append(VersionsBroken(
                    f"version {entry.version} follows version {last[entry.oid]}", entry.nid,
                    entry.oid, entry.version))
            last[entry.oid] = max(last[entry.oid], entry.version)
        return failures

    @staticmethod
    def _keep(conn: Connection, fresh: list[_Entry], checkpoint: Checkpoint, note: str,
              origin: str, trusted: bytes, tree: merkle.CompactRange, first: bool) -> None:
        for start in range(0, len(fresh), 1000):
            conn.execute(insert(entries), [
                {"position": e.position, "originator_id": e.oid, "version": e.version,
                 "topic": e.topic, "kid": e.kid, "signed_at": naive_utc(e.signed_at),
                 "chain": e.chain, "leaf": e.leaf} for e in fresh[start:start + 1000]])
        conn.execute(insert(checkpoints).values(
            tree_size=checkpoint.tree_size, root_hash=checkpoint.root_hash, note=note,
            fetched_at=naive_utc(datetime.now(UTC))))
        values = {"size": tree.size, "edge": b"".join(tree.hashes)}
        if first:
            conn.execute(insert(state).values(id=1, origin=origin, trusted=trusted, **values))
        else:
            conn.execute(update(state).where(state.c.id == 1).values(**values))


def check_signatures(registry: KeyRegistry, rows: list[Row]) -> list[VerificationFailure]:
    """Envelope, key and signature of each row, on every core: in worker processes for many
    rows (as `credit verify` does), in this process for a few."""
    if len(rows) < PROCESSES_FROM:
        return EventChecker(registry).check_rows(rows)
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=init_worker, initargs=(registry,)) as pool:
        chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
        return [failure for found in pool.map(check_rows_in_worker, chunks) for failure in found]


def chain_of_first(entry: _Entry) -> str:
    """The chain an aggregate's first event names: its payload's subject, else its kind's."""
    try:
        subject = subject_named(entry.state)
    except ValueError:
        subject = None
    return chain_map.chain_key(subject if isinstance(subject, str) else None,
                               stream_of(entry.topic))


def _limits(replay: RegistryReplay) -> dict[str, datetime]:
    """Each key's earliest time from which it may no longer sign (revoked or retired)."""
    out: dict[str, datetime] = {}
    for kid, key in replay.registry.keys.items():
        ends = [t for t in (key.revoked_at, key.retired_at) if t is not None]
        if ends:
            out[kid] = min(ends)
    return out


def _split_bundle(body: bytes, path: str) -> list[bytes]:
    leaves: list[bytes] = []
    at = 0
    while at < len(body):
        if at + 2 > len(body):
            raise MirrorRefused(f"{path} ends inside an entry's length")
        length = int.from_bytes(body[at:at + 2], "big")
        if at + 2 + length > len(body):
            raise MirrorRefused(f"{path} ends inside an entry")
        leaves.append(body[at + 2:at + 2 + length])
        at += 2 + length
    return leaves
