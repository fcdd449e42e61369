"""The Merkle tree against the public vectors of transparency-dev/merkle (tests/data)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import merkle

DATA = Path(__file__).parent.parent / "data" / "transparency-dev-merkle"
REFERENCE = json.loads((DATA / "reference_tree.json").read_text())
LEAVES = [bytes.fromhex(x) for x in REFERENCE["leaf_inputs_hex"]]
ROOTS = [bytes.fromhex(x) for x in REFERENCE["root_hashes_hex"]]


def vectors(kind: str) -> list[Any]:
    files = sorted((DATA / kind).rglob("*.json"))
    assert len(files) > 50, f"the {kind} vectors are missing"
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(DATA))) for f in files]


def b64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def node_source(leaves: list[bytes]) -> merkle.NodeSource:
    hashes = [merkle.hash_leaf(x) for x in leaves]

    def node(level: int, index: int) -> bytes:
        return merkle.root_of(hashes[index << level:(index + 1) << level])
    return node


@pytest.mark.parametrize("vector", vectors("inclusion"))
def test_inclusion_vectors(vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    args = (vector["leafIdx"], vector["treeSize"], b64(vector["leafHash"]), proof,
            b64(vector["root"]))
    if vector["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("vector", vectors("consistency"))
def test_consistency_vectors(vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    args = (vector["size1"], vector["size2"], b64(vector["root1"]), b64(vector["root2"]), proof)
    if vector["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_roots_of_the_reference_tree_match_for_every_size() -> None:
    hashes = [merkle.hash_leaf(x) for x in LEAVES]
    tree = merkle.CompactRange()
    assert tree.root() == ROOTS[0] == merkle.EMPTY_ROOT
    for size in range(1, len(LEAVES) + 1):
        assert merkle.root_of(hashes[:size]) == ROOTS[size]
        tree.append(hashes[size - 1])
        assert tree.root() == ROOTS[size]


def test_generated_proofs_equal_the_happy_path_vectors() -> None:
    node = node_source(LEAVES)
    for path in sorted((DATA / "inclusion").rglob("happy-path.json")):
        v = json.loads(path.read_text())
        if v["treeSize"] <= len(LEAVES):
            assert merkle.inclusion_proof(v["leafIdx"], v["treeSize"], node) == [
                b64(p) for p in v["proof"] or []], path
    for path in sorted((DATA / "consistency").rglob("happy-path.json")):
        v = json.loads(path.read_text())
        if v["size1"] > 0 and v["size2"] <= len(LEAVES):
            assert merkle.consistency_proof(v["size1"], v["size2"], node) == [
                b64(p) for p in v["proof"] or []], path


def test_the_compact_range_reports_every_completed_subtree() -> None:
    seen: dict[tuple[int, int], bytes] = {}
    tree = merkle.CompactRange(on_node=lambda level, idx, h: seen.__setitem__((level, idx), h))
    for leaf in LEAVES:
        tree.append(merkle.hash_leaf(leaf))
    node = node_source(LEAVES)
    assert set(seen) == {(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0)}
    for (level, idx), h in seen.items():
        assert h == node(level, idx)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 70), data=st.data())
def test_proofs_from_stored_nodes_verify_for_any_tree(size: int, data: st.DataObject) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    node = node_source(leaves)
    root = merkle.root_of([merkle.hash_leaf(x) for x in leaves])
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, node)
    merkle.verify_inclusion(index, size, merkle.hash_leaf(leaves[index]), proof, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, size, merkle.hash_leaf(b"other"), proof, root)
    old = data.draw(st.integers(1, size))
    old_root = merkle.root_of([merkle.hash_leaf(x) for x in leaves[:old]])
    merkle.verify_consistency(old, size, old_root, root, merkle.consistency_proof(old, size, node))
    if old < size:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, size, merkle.hash_leaf(b"x"), root,
                                      merkle.consistency_proof(old, size, node))


def test_a_compact_range_needs_one_hash_per_set_bit() -> None:
    with pytest.raises(ValueError, match="has 2 hashes"):
        merkle.CompactRange(size=5, hashes=[b"x" * 32])
    assert merkle.CompactRange.levels(13) == [(3, 0), (2, 2), (0, 12)]
