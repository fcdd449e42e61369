"""The Merkle tree of RFC 6962 / RFC 9162 (§2.1): hashing, compact ranges, inclusion and consistency.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); the empty tree's root is
SHA-256(""). A tree of n leaves splits at k, the largest power of two smaller than n.

Standard library only: offline verifiers import this module as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# node(level, index) -> hash of the perfect subtree covering leaves [index << level, (index+1) << level)
NodeSource = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not prove what it claims; the message names the failed step."""


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a whole list of leaf hashes (for tests and small trees)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = split_point(n)
    return hash_children(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


class CompactRange:
    """The right edge of a growing tree: one hash per set bit of its size, O(log n) memory.

    ``append`` reports every perfect subtree it completes through ``on_node(level, index, hash)``,
    which is how the ledger stores the internal nodes it later builds proofs from.
    """

    __slots__ = ("_on_node", "hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = (),
                 on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        self.size = size
        self.hashes = list(hashes)  # perfect subtree roots, largest (leftmost) first
        if len(self.hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} has {size.bit_count()} hashes")
        self._on_node = on_node

    @staticmethod
    def levels(size: int) -> list[tuple[int, int]]:
        """(level, index) of the perfect subtrees of a tree of ``size``, left to right."""
        out: list[tuple[int, int]] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    def append(self, leaf_hash: bytes) -> None:
        node = leaf_hash
        index = self.size
        level = 0
        on_node = self._on_node
        while index & 1:
            node = hash_children(self.hashes.pop(), node)
            index >>= 1
            level += 1
            if on_node is not None:
                on_node(level, index, node)
        self.hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        node = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            node = hash_children(left, node)
        return node


# -- building proofs from stored perfect-subtree nodes ----------------------------------------


def range_hash(start: int, end: int, node: NodeSource,
               memo: dict[tuple[int, int], bytes] | None = None) -> bytes:
    """MTH of leaves [start, end), where start is aligned as the RFC's recursion leaves it.
    ``memo`` keeps the hashes of ranges that are not stored subtrees (the tree's right edge),
    which every proof into the same tree recomputes otherwise."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    if memo is not None and (start, end) in memo:
        return memo[(start, end)]
    k = split_point(n)
    value = hash_children(range_hash(start, start + k, node, memo),
                          range_hash(start + k, end, node, memo))
    if memo is not None:
        memo[(start, end)] = value
    return value


def inclusion_proof(index: int, size: int, node: NodeSource,
                    memo: dict[tuple[int, int], bytes] | None = None) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, leaf-side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(range_hash(start + k, end, node, memo))
            end = start + k
        else:
            path.append(range_hash(start, start + k, node, memo))
            start += k
    path.reverse()
    return path


def inclusion_proofs(indexes: Sequence[int], size: int,
                     fetch: Callable[[set[tuple[int, int]]], dict[tuple[int, int], bytes]]
                     ) -> dict[int, list[bytes]]:
    """Inclusion proofs of many leaves with one fetch of the stored nodes they need: a first
    pass only records which perfect subtrees the proofs touch."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(HASH_SIZE)

    recorded: dict[tuple[int, int], bytes] = {}
    for index in indexes:
        inclusion_proof(index, size, record, recorded)
    nodes = fetch(wanted)

    def stored(level: int, index: int) -> bytes:
        try:
            return nodes[(level, index)]
        except KeyError:
            raise LookupError(f"the stored tree has no node at level {level}, index {index}"
                              ) from None

    memo: dict[tuple[int, int], bytes] = {}
    return {index: inclusion_proof(index, size, stored, memo) for index in indexes}


def consistency_proof(size1: int, size2: int, node: NodeSource) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 6962 §2.1.2."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    path: list[bytes] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                path.append(range_hash(start, end, node))
            return
        k = split_point(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            path.append(range_hash(start + k, end, node))
        else:
            subproof(m - k, start + k, end, False)
            path.append(range_hash(start, start + k, node))

    subproof(size1, 0, size2, True)
    return path


# -- verifying proofs (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} has {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes,
                              proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is beyond tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    fn, sn = index, size - 1
    r = leaf_hash
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p)
        if sn == 0:
            raise ProofError(f"inclusion proof has {len(proof)} hashes, more than the tree needs")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, fewer than the tree needs")
    return r


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise ProofError unless ``proof`` shows ``leaf_hash`` at ``index`` under ``root``."""
    _check_hash("root", root)
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise ProofError unless ``proof`` shows the tree (size1, root1) is a prefix of (size2, root2)."""
    if size2 < size1:
        raise ProofError(f"tree size went down from {size1} to {size2}")
    if size1 == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("equal tree sizes need an empty proof")
        if root1 != root2:
            raise ProofError(f"two different roots for tree size {size1}")
        return
    _check_hash("first root", root1)
    _check_hash("second root", root2)
    if not proof:
        raise ProofError("empty consistency proof for different tree sizes")
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p)
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof has more hashes than the trees need")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof has fewer hashes than the trees need")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")
