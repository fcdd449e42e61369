"""``credit verify``: check the whole store against its signatures, its Merkle log and checkpoints.

The checks, each a function below, each failure a short fact naming the event:

1. key registry   every key event is signed by a platform key valid before it; the first one
                  registers the platform with the trusted key (``check_registry``)
2. envelope       every stored state is a signed envelope                   (``check_event``)
3. key            the envelope's key belongs to the event's actor and was valid at its time
4. signature      the Ed25519 signature covers exactly the documented bytes
5. log index      every event is in ``ledger_log`` with the leaf hash the ledger computed when it
                  stored it, and every logged event is still in the store (``check_log``)
6. versions       each aggregate's versions run 1, 2, 3 … without a gap    (``check_versions``)
7. checkpoints    each is a well-formed note signed by a platform key valid at its time, its root
                  equals the root recomputed from the stored events, and sizes never shrink; where
                  a root differs, a consistency proof from the stored tree tells an inconsistent
                  checkpoint apart from altered events                      (``check_checkpoint``)
8. coverage       the last checkpoint covers every event; events after it are reported

The store is read in pages by key (flat memory); signatures are checked on every core.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.engine import Connection

from keys.registry import PLATFORM, KeyRegistry, KeyRegistryError
from keys.signer import BadSignature, fingerprint, verify
from ledger import envelope, merkle, tables
from ledger.checkpoint import Checkpoint, MalformedCheckpoint, key_id, parse_checkpoint
from ledger.recorder import naive_utc
from ledger.registry_events import REGISTRY_TOPICS
from ledger.registry_replay import Failure, RegistryReplay

PAGE = 5000
CHUNK = 500
MAX_FAILURES_KEPT = 1000

# Order of checks for failures about the same event, so "the first failure" is stable.
RANK = {"registry": 0, "envelope": 1, "key": 2, "signature": 3, "log": 4, "version": 5,
        "checkpoint": 6}


@dataclass
class VerifyReport:
    ok: bool = True
    events: int = 0
    checkpoints: int = 0
    failure_count: int = 0
    failures: list[Failure] = field(default_factory=list)
    uncheckpointed: int = 0
    last_checkpoint_size: int | None = None
    trust: str = ""

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "failures": [f.as_dict() for f in self.failures],
            "failure_count": self.failure_count,
            "uncheckpointed_events": self.uncheckpointed,
            "last_checkpoint_size": self.last_checkpoint_size,
            "trust": self.trust,
        }


class _Failures:
    def __init__(self) -> None:
        self.items: list[tuple[float, int, Failure]] = []
        self.count = 0

    def add(self, check: str, failure: Failure) -> None:
        self.count += 1
        nid = failure.notification_id
        self.items.append((float("inf") if nid is None else nid, RANK[check], failure))
        if len(self.items) > 2 * MAX_FAILURES_KEPT:
            self.items.sort(key=lambda t: (t[0], t[1]))
            del self.items[MAX_FAILURES_KEPT:]

    def sorted(self) -> list[Failure]:
        self.items.sort(key=lambda t: (t[0], t[1]))
        return [f for _, _, f in self.items[:MAX_FAILURES_KEPT]]


# -- check 1: the key registry ----------------------------------------------------------------


def check_registry(rows: Iterator[tuple[int, UUID, int, str, bytes]],
                   trusted: Sequence[bytes] | None) -> tuple[KeyRegistry, list[Failure], str]:
    """Replay key events; return the registry, failures, and a sentence on what was trusted."""
    replay = RegistryReplay()
    for nid, oid, version, topic, state in rows:
        replay.feed(nid, oid, version, topic, state)
    failures = list(replay.failures)
    genesis = replay.genesis_key
    if genesis is None:
        if not replay.registry.is_empty or failures:
            failures.append(Failure(None, None, None, "the ledger has no valid platform key"))
        return replay.registry, failures, "no platform key in the ledger"
    name = f"platform key {fingerprint(genesis)}"
    if trusted is None:
        return replay.registry, failures, f"{name} (the ledger's own first key; not checked)"
    if genesis not in trusted:
        failures.append(Failure(None, None, None,
                                f"the ledger's first {name} is not the trusted platform key"))
    return replay.registry, failures, f"{name}, the trusted platform key"


# -- checks 2-4: one stored event -------------------------------------------------------------


def check_event(registry: KeyRegistry, nid: int, oid: UUID, version: int, topic: str,
                state: bytes) -> tuple[str, Failure] | None:
    """Envelope, key and signature of one stored event; None when all hold."""
    def failure(check: str, reason: str) -> tuple[str, Failure]:
        return check, Failure(nid, str(oid), version, reason)

    try:
        sealed = envelope.decode(state)
        at = sealed.recorded_at
    except ValueError as exc:
        return failure("envelope", f"stored state is not a signed envelope: {exc}")
    try:
        key = registry.check_signing_key(sealed.kid, sealed.actor, at, nid)
    except KeyRegistryError as exc:
        return failure("key", str(exc))
    message = envelope.signed_bytes(oid, version, topic, sealed.actor, sealed.at, sealed.kid,
                                    sealed.payload)
    try:
        verify(key.public_key, sealed.signature, message)
    except BadSignature:
        return failure("signature", f"signature does not match key {sealed.kid}")
    return None


def _check_chunk(registry: KeyRegistry,
                 rows: Sequence[tuple[int, UUID, int, str, bytes]]) -> list[tuple[str, Failure]]:
    out = []
    for row in rows:
        result = check_event(registry, *row)
        if result is not None:
            out.append(result)
    return out


# -- check 7: one checkpoint ------------------------------------------------------------------


def check_checkpoint(registry: KeyRegistry, seq: int, row: Any, recomputed_root: bytes | None,
                     last_nid: int | None) -> list[str]:
    """Reasons checkpoint ``seq`` fails (empty when it holds); ``row`` is its stored row."""
    try:
        cp = parse_checkpoint(row.note)
    except MalformedCheckpoint as exc:
        return [f"checkpoint {seq} is not a readable signed note: {exc}"]
    reasons = []
    if (cp.tree_size != row.tree_size or cp.root_hash != bytes(row.root_hash)
            or cp.key_name != row.kid or naive_utc(cp.issued_at) != row.issued_at):
        reasons.append(f"checkpoint {seq}: its stored columns differ from its signed note")
    try:
        key = registry.check_signing_key(cp.key_name, PLATFORM, cp.issued_at, last_nid)
    except KeyRegistryError as exc:
        return [*reasons, f"checkpoint {seq}: {exc}"]
    if cp.key_id != key_id(cp.key_name, key.public_key):
        reasons.append(f"checkpoint {seq}: key id does not match key {cp.key_name}")
    try:
        verify(key.public_key, cp.signature, cp.body.encode("utf-8"))
    except BadSignature:
        return [*reasons, f"checkpoint {seq}: signature does not match key {cp.key_name}"]
    if recomputed_root is not None and cp.root_hash != recomputed_root:
        reasons.append(
            f"checkpoint {seq} (size {cp.tree_size}): its signed root does not match the root "
            "of the stored events at that size"
        )
    return reasons


def check_consistency(previous: Checkpoint, current: Checkpoint, seq: int, prev_seq: int,
                      node: merkle.NodeSource) -> str | None:
    """Whether ``current`` extends ``previous``, proved from the stored tree nodes."""
    if current.tree_size < previous.tree_size:
        return (f"checkpoint {seq} has size {current.tree_size}, smaller than checkpoint "
                f"{prev_seq}'s {previous.tree_size}")
    if previous.tree_size == 0:
        return None
    try:
        proof = merkle.consistency_proof(previous.tree_size, current.tree_size, node)
        merkle.verify_consistency(previous.tree_size, current.tree_size, previous.root_hash,
                                  current.root_hash, proof)
    except (merkle.ProofError, LookupError) as exc:
        return f"checkpoint {seq} is not consistent with checkpoint {prev_seq}: {exc}"
    return None


# -- the run ----------------------------------------------------------------------------------


class LedgerVerifier:
    """Runs every check over one store; ``run()`` returns the report."""

    def __init__(self, engine: Engine, events_table: Table, *,
                 trusted_platform_keys: Sequence[bytes] | None = None,
                 progress: Callable[[int], None] | None = None,
                 workers: int | None = None) -> None:
        self.engine = engine
        self.events = events_table
        self.trusted = trusted_platform_keys
        self.progress = progress
        self.workers = workers or os.cpu_count() or 1
        self.failures = _Failures()

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.events)).scalar() or 0)

    def run(self) -> VerifyReport:
        report = VerifyReport()
        with self.engine.connect() as conn:
            # Checkpoints first, then the events' upper bound: every checkpoint read is then
            # about events at or below that bound, even while others keep writing.
            last_seq = conn.execute(select(func.max(tables.checkpoints.c.seq))).scalar() or 0
            # The bound covers what the log index names too, so deleted events are still seen.
            max_id = max(conn.execute(select(func.max(self.events.c.id))).scalar() or 0,
                         conn.execute(select(func.max(tables.log.c.notification_id))).scalar()
                         or 0)
            registry_rows = conn.execute(
                select(self.events.c.id, self.events.c.originator_id,
                       self.events.c.originator_version, self.events.c.topic,
                       self.events.c.state)
                .where(self.events.c.topic.in_(REGISTRY_TOPICS), self.events.c.id <= max_id)
                .order_by(self.events.c.id)
            )
            registry, registry_failures, report.trust = check_registry(
                ((r[0], r[1], r[2], r[3], bytes(r[4])) for r in registry_rows), self.trusted)
            for f in registry_failures:
                self.failures.add("registry", f)
            report.events = self._check_events(conn, registry, max_id, last_seq, report)
            self.check_log(conn, max_id)
            self.check_versions(conn, max_id)
        report.failure_count = self.failures.count
        report.failures = self.failures.sorted()
        report.ok = self.failures.count == 0
        return report

    def _pages(self, conn: Connection, max_id: int) -> Iterator[Sequence[Any]]:
        e, log = self.events, tables.log
        last = 0
        while True:
            page = conn.execute(
                select(e.c.id, e.c.originator_id, e.c.originator_version, e.c.topic, e.c.state,
                       log.c.position, log.c.leaf_hash)
                .outerjoin(log, log.c.notification_id == e.c.id)
                .where(e.c.id > last, e.c.id <= max_id)
                .order_by(e.c.id)
                .limit(PAGE)
            ).all()
            if not page:
                return
            yield page
            last = page[-1][0]

    def _checkpoint_rows(self, conn: Connection, last_seq: int) -> Iterator[Any]:
        c = tables.checkpoints
        after = 0
        while True:
            page = conn.execute(
                select(c).where(c.c.seq > after, c.c.seq <= last_seq).order_by(c.c.seq)
                .limit(PAGE)
            ).all()
            if not page:
                return
            yield from page
            after = page[-1].seq

    def _check_events(self, conn: Connection, registry: KeyRegistry, max_id: int,
                      last_seq: int, report: VerifyReport) -> int:
        tree = merkle.CompactRange()
        checkpoints = self._checkpoint_rows(conn, last_seq)
        pending = next(checkpoints, None)
        previous: tuple[int, Checkpoint] | None = None
        last_nid: int | None = None
        seen = 0
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="credit-verify")
        futures: list[Future[list[tuple[str, Failure]]]] = []

        def close_checkpoints(size: int) -> None:
            nonlocal pending, previous
            while pending is not None and pending.tree_size == size:
                previous = self._close_checkpoint(conn, registry, pending, tree.root(), last_nid,
                                                  previous)
                report.checkpoints += 1
                report.last_checkpoint_size = size
                pending = next(checkpoints, None)

        try:
            close_checkpoints(0)
            for page in self._pages(conn, max_id):
                chunk: list[tuple[int, UUID, int, str, bytes]] = []
                for nid, oid, version, topic, state, position, logged_leaf in page:
                    state = bytes(state)
                    leaf = envelope.leaf_hash(oid, version, topic, state)
                    if position is None:
                        self.failures.add("log", Failure(
                            nid, str(oid), version,
                            "not in the ledger's log index: written outside the ledger"))
                    elif bytes(logged_leaf) != leaf:
                        self.failures.add("log", Failure(
                            nid, str(oid), version,
                            f"differs from the event the ledger logged at position {position}"))
                    tree.append(leaf)
                    last_nid = nid
                    chunk.append((nid, oid, version, topic, state))
                    if len(chunk) >= CHUNK:
                        futures.append(pool.submit(_check_chunk, registry, chunk))
                        chunk = []
                    close_checkpoints(tree.size)
                if chunk:
                    futures.append(pool.submit(_check_chunk, registry, chunk))
                seen += len(page)
                self._collect(futures, wait=False)
                if self.progress is not None:
                    self.progress(seen)
            self._collect(futures, wait=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        while pending is not None:  # checkpoints beyond the stored events
            self.failures.add("checkpoint", Failure(
                None, None, None,
                f"checkpoint {pending.seq} covers {pending.tree_size} events, but the store "
                f"holds {tree.size}: events are missing from the end"))
            report.checkpoints += 1
            pending = next(checkpoints, None)
        report.uncheckpointed = tree.size - (report.last_checkpoint_size or 0)
        return tree.size

    def _collect(self, futures: list[Future[list[tuple[str, Failure]]]], *, wait: bool) -> None:
        while futures and (wait or futures[0].done()):
            for check, failure in futures.pop(0).result():
                self.failures.add(check, failure)

    def _close_checkpoint(self, conn: Connection, registry: KeyRegistry, row: Any,
                          root: bytes, last_nid: int | None,
                          previous: tuple[int, Checkpoint] | None) -> tuple[int, Checkpoint] | None:
        reasons = check_checkpoint(registry, row.seq, row, root, last_nid)
        try:
            current = parse_checkpoint(row.note)
        except MalformedCheckpoint:
            current = None
        if current is not None and previous is not None and reasons:
            inconsistent = check_consistency(previous[1], current, row.seq, previous[0],
                                             stored_nodes(conn))
            if inconsistent:
                reasons.append(inconsistent)
        for reason in reasons:
            self.failures.add("checkpoint", Failure(last_nid, None, None, reason))
        if reasons or current is None:
            return previous
        return row.seq, current

    # -- check 5: every logged event is still stored -----------------------------------------

    def check_log(self, conn: Connection, max_id: int) -> None:
        e, log = self.events, tables.log
        missing = conn.execute(
            select(log.c.position, log.c.notification_id, log.c.originator_id,
                   log.c.originator_version)
            .outerjoin(e, e.c.id == log.c.notification_id)
            .where(e.c.id.is_(None), log.c.notification_id <= max_id)
            .order_by(log.c.position)
        )
        for position, nid, oid, version in missing:
            self.failures.add("log", Failure(
                nid, str(oid), version,
                f"missing from the event store (the log holds it at position {position})"))

    # -- check 6: versions run without gaps ---------------------------------------------------

    def check_versions(self, conn: Connection, max_id: int) -> None:
        e = self.events
        rows = conn.execution_options(yield_per=PAGE).execute(
            select(e.c.originator_id, e.c.originator_version, e.c.id)
            .where(e.c.id <= max_id)
            .order_by(e.c.originator_id, e.c.originator_version)
        )
        current: UUID | None = None
        expected = 1
        for oid, version, nid in rows:
            if oid != current:
                current, expected = oid, 1
            if version != expected:
                missing = (f"version {expected} is missing" if version > expected
                           else f"version {version} appears twice")
                self.failures.add("version", Failure(
                    nid, str(oid), version,
                    f"versions are not contiguous: {missing} before version {version}"))
            expected = version + 1


def stored_nodes(conn: Connection) -> merkle.NodeSource:
    """A node source over ``ledger_log`` and ``ledger_tree`` (for proofs)."""
    def node(level: int, index: int) -> bytes:
        if level == 0:
            value = conn.execute(
                select(tables.log.c.leaf_hash).where(tables.log.c.position == index)).scalar()
        else:
            value = conn.execute(
                select(tables.tree.c.hash).where(tables.tree.c.level == level,
                                                 tables.tree.c.idx == index)).scalar()
        if value is None:
            raise LookupError(f"the stored tree has no node at level {level}, index {index}")
        return bytes(value)
    return node
