"""Per-subject hash chains and the map of their heads committed in every checkpoint.

The Merkle log proves that an event is *in* the log; it cannot prove that an extract holds *every*
event of a subject. For that, each event also extends one **chain**, and every checkpoint commits
to the heads of all chains through a **chain map** (docs/FORMAT.md §7):

    chain key   the subject key (``uscc:…``, ``rid:…``) of the event's aggregate; events with no
                subject are chained by kind: ``~Authority`` (the key registry), ``~PolicyVersion``
    head        head_0 = 32 zero bytes;  head_k = SHA-256(0x03 || head_(k-1) || leaf hash of event k)
    key hash    SHA-256(0x02 || UTF-8 chain key);  bucket = its first two bytes, big-endian
    entry       SHA-256(0x04 || key hash || length as 8 bytes big-endian || head)
    bucket      SHA-256(0x05 || entries of the bucket's chains, ordered by key hash)
    map root    a complete binary tree of depth 16 over the 65,536 bucket hashes,
                node = SHA-256(0x01 || left || right)

Given a chain's events, the other entries of its bucket and the 16 sibling hashes on the bucket's
path, anyone can recompute the map root in a checkpoint, and so check that no event of the chain is
missing, added or out of order. Leaving one out changes the head; a chain that is not in the map at
all (no events) is shown by a bucket without its key hash.

Standard library only: offline verifiers import this module as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proofs.merkle import hash_children

DEPTH = 16
BUCKETS = 1 << DEPTH
EMPTY_HEAD = bytes(32)
KEY_PREFIX = b"\x02"
CHAIN_PREFIX = b"\x03"
ENTRY_PREFIX = b"\x04"
BUCKET_PREFIX = b"\x05"
REGISTRY_CHAIN = "~Authority"
POLICY_CHAIN = "~PolicyVersion"

_sha256 = hashlib.sha256


class MapProofError(ValueError):
    """A map proof that does not prove what it claims; the message names the failed step."""


def chain_key(subject: str | None, stream: str) -> str:
    """The chain an event extends: its subject's, or its kind's when it has no subject."""
    return subject if subject is not None else "~" + stream


def key_hash(key: str) -> bytes:
    return _sha256(KEY_PREFIX + key.encode("utf-8")).digest()


def bucket_of(hkey: bytes) -> int:
    return (hkey[0] << 8) | hkey[1]


def extend(head: bytes, leaf_hash: bytes) -> bytes:
    """The chain's head after one more event."""
    return _sha256(CHAIN_PREFIX + head + leaf_hash).digest()


def chain_head(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """(length, head) of a chain of these leaves, in log order."""
    head, length = EMPTY_HEAD, 0
    for leaf in leaf_hashes:
        head = _sha256(CHAIN_PREFIX + head + leaf).digest()
        length += 1
    return length, head


def entry_hash(hkey: bytes, length: int, head: bytes) -> bytes:
    return _sha256(ENTRY_PREFIX + hkey + length.to_bytes(8, "big") + head).digest()


def bucket_hash(entries: Iterable[tuple[bytes, int, bytes]]) -> bytes:
    """The hash of one bucket from its chains' (key hash, length, head)."""
    ordered = sorted(entries, key=lambda e: e[0])
    return _sha256(BUCKET_PREFIX + b"".join(entry_hash(*e) for e in ordered)).digest()


ENTRY_SIZE = 72  # key hash, length (8 bytes, big-endian), head


def pack_entries(entries: dict[bytes, tuple[int, bytes]]) -> bytes:
    """A bucket's entries as one byte string, ordered by key hash (what writers cache)."""
    return b"".join(hkey + length.to_bytes(8, "big") + head
                    for hkey, (length, head) in sorted(entries.items()))


def unpack_entries(packed: bytes) -> dict[bytes, tuple[int, bytes]]:
    return {packed[i:i + 32]: (int.from_bytes(packed[i + 32:i + 40], "big"), packed[i + 40:i + 72])
            for i in range(0, len(packed), ENTRY_SIZE)}


def packed_bucket_hash(packed: bytes) -> bytes:
    """``bucket_hash`` of packed entries: the entry hash covers exactly the 72 packed bytes."""
    return _sha256(BUCKET_PREFIX + b"".join(
        _sha256(ENTRY_PREFIX + packed[i:i + ENTRY_SIZE]).digest()
        for i in range(0, len(packed), ENTRY_SIZE))).digest()


def _defaults() -> list[bytes]:
    node = bucket_hash(())
    out = [node]
    for _ in range(DEPTH):
        node = hash_children(node, node)
        out.append(node)
    return out


# DEFAULTS[level]: the hash of a subtree at that level whose buckets are all empty
DEFAULTS = _defaults()
EMPTY_MAP_ROOT = DEFAULTS[DEPTH]


def path_indexes(bucket: int) -> list[tuple[int, int]]:
    """(level, index) of the 16 siblings on a bucket's path, bucket side first."""
    return [(level, (bucket >> level) ^ 1) for level in range(DEPTH)]


def root_from_path(bucket: int, bucket_digest: bytes, path: Sequence[bytes]) -> bytes:
    """The map root implied by a bucket's hash and its sibling path."""
    if not 0 <= bucket < BUCKETS:
        raise MapProofError(f"bucket {bucket} is outside the map")
    if len(path) != DEPTH:
        raise MapProofError(f"a map path has {DEPTH} hashes, this one {len(path)}")
    node = bucket_digest
    for level, sibling in enumerate(path):
        if len(sibling) != 32:
            raise MapProofError(f"map path hash {level} has {len(sibling)} bytes, not 32")
        node = hash_children(sibling, node) if bucket >> level & 1 else hash_children(node, sibling)
    return node


@dataclass(frozen=True)
class MapProof:
    """What shows one chain's (length, head) under a map root: its bucket's entries and path."""

    key: str
    entries: tuple[tuple[bytes, int, bytes], ...]  # (key hash, length, head) of the whole bucket
    path: tuple[bytes, ...]

    def check(self, length: int, head: bytes, root: bytes) -> None:
        """Raise MapProofError unless the map under ``root`` holds exactly this chain state."""
        hkey = key_hash(self.key)
        bucket = bucket_of(hkey)
        keys = [e[0] for e in self.entries]
        if len(set(keys)) != len(keys):
            raise MapProofError(f"bucket {bucket} lists a chain twice")
        if any(bucket_of(k) != bucket for k in keys):
            raise MapProofError(f"bucket {bucket} lists a chain of another bucket")
        mine = [e for e in self.entries if e[0] == hkey]
        if length == 0:
            if mine:
                raise MapProofError(
                    f"the map holds {mine[0][1]} events of chain {self.key!r}, the extract none")
        elif not mine:
            raise MapProofError(f"the map has no chain {self.key!r}, the extract {length} events")
        elif mine[0][1] != length:
            raise MapProofError(
                f"the map holds {mine[0][1]} events of chain {self.key!r}, the extract {length}")
        elif mine[0][2] != head:
            raise MapProofError(
                f"the head of chain {self.key!r} in the map differs from the head of the "
                f"extract's {length} events: an event is missing, changed or out of order")
        if root_from_path(bucket, bucket_hash(self.entries), self.path) != root:
            raise MapProofError(f"the map path of bucket {bucket} does not lead to the checkpoint's "
                                "chain root")


class ChainMap:
    """Every chain's head and the map over them, in memory (for ``credit verify`` and tests).

    ``append`` extends a chain; ``root`` folds in the chains changed since the last call. Each
    chain's entry hash is kept, so a changed bucket costs one hash of its entries' hashes, not a
    hash of every entry again (buckets fill as the ledger grows)."""

    def __init__(self) -> None:
        self.buckets: dict[int, dict[bytes, tuple[int, bytes]]] = {}
        # each level's nodes by index, the empty subtree's hash where none was set (a list:
        # indexing one costs less than a dict look-up with a default, a root takes thousands)
        self.levels: list[list[bytes]] = [[DEFAULTS[level]] * (BUCKETS >> level)
                                          for level in range(DEPTH + 1)]
        self._entry_hashes: dict[bytes, bytes] = {}
        self._dirty: set[bytes] = set()  # key hashes of the chains changed since ``root``
        self._root = EMPTY_MAP_ROOT
        # each chain appended to: its key hash and its bucket's entries (a subject's next event
        # then costs no hash of its key and no look-up of its bucket)
        self._appended: dict[str, tuple[bytes, dict[bytes, tuple[int, bytes]]]] = {}

    def append(self, key: str, leaf_hash: bytes) -> None:
        known = self._appended.get(key)
        if known is None:
            hkey = _sha256(KEY_PREFIX + key.encode("utf-8")).digest()
            bucket = (hkey[0] << 8) | hkey[1]
            entries = self.buckets.get(bucket)
            if entries is None:
                entries = self.buckets[bucket] = {}
            known = self._appended[key] = (hkey, entries)
        hkey, entries = known
        length, head = entries.get(hkey, (0, EMPTY_HEAD))
        entries[hkey] = (length + 1, _sha256(CHAIN_PREFIX + head + leaf_hash).digest())
        self._dirty.add(hkey)

    def load(self, chains: Iterable[tuple[bytes, int, bytes]]) -> None:
        """Start from chains kept elsewhere: (key hash, length, head) each; folded at ``root``."""
        for hkey, length, head in chains:
            self.buckets.setdefault(bucket_of(hkey), {})[hkey] = (length, head)
            self._dirty.add(hkey)

    def chain(self, key: str) -> tuple[int, bytes]:
        hkey = key_hash(key)
        return self.buckets.get(bucket_of(hkey), {}).get(hkey, (0, EMPTY_HEAD))

    def chains(self) -> Iterable[tuple[bytes, int, bytes]]:
        for entries in self.buckets.values():
            for hkey, (length, head) in entries.items():
                yield hkey, length, head

    def root(self) -> bytes:
        if not self._dirty:
            return self._root
        hashes, buckets, sha256 = self._entry_hashes, self.buckets, _sha256
        changed = set()
        for hkey in self._dirty:
            bucket = (hkey[0] << 8) | hkey[1]
            length, head = buckets[bucket][hkey]
            hashes[hkey] = entry_hash(hkey, length, head)
            changed.add(bucket)
        nodes = self.levels[0]
        for bucket in changed:  # as bucket_hash: the entries' hashes in key-hash order
            nodes[bucket] = sha256(BUCKET_PREFIX + b"".join(
                [hashes[k] for k in sorted(buckets[bucket])])).digest()
        indexes: set[int] = changed
        for level in range(DEPTH):
            below, above = nodes, self.levels[level + 1]
            indexes = {idx >> 1 for idx in indexes}
            for parent in indexes:  # hash_children, inlined: a root hashes thousands of nodes
                left = parent << 1
                above[parent] = sha256(b"\x01" + below[left] + below[left | 1]).digest()
            nodes = above
        self._root = nodes[0]
        self._dirty.clear()
        return self._root

    def proof(self, key: str) -> MapProof:
        self.root()
        hkey = key_hash(key)
        bucket = bucket_of(hkey)
        entries = tuple(sorted((k, n, h) for k, (n, h) in self.buckets.get(bucket, {}).items()))
        path = tuple(self.levels[level][idx] for level, idx in path_indexes(bucket))
        return MapProof(key, entries, path)
