"""The chain map of docs/FORMAT.md §7, recomputed by hand from its definition."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import chain_map
from proofs.checks import check_chain_key
from proofs.merkle import hash_children


def sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


LEAVES = [sha(bytes([i])) for i in range(5)]


def test_a_chain_head_follows_the_definition() -> None:
    head = bytes(32)
    for leaf in LEAVES[:3]:
        head = sha(b"\x03", head, leaf)
    assert chain_map.chain_head(LEAVES[:3]) == (3, head)
    assert chain_map.chain_head([]) == (0, bytes(32))


def test_the_map_root_of_one_chain_follows_the_definition() -> None:
    key = "uscc:91350100M000100Y43"
    hkey = sha(b"\x02", key.encode())
    bucket = int.from_bytes(hkey[:2], "big")
    length, head = chain_map.chain_head(LEAVES)
    node = sha(b"\x05", sha(b"\x04", hkey, length.to_bytes(8, "big"), head))
    empty = sha(b"\x05")
    for level in range(16):
        sibling = empty
        for _ in range(level):
            sibling = hash_children(sibling, sibling)
        node = hash_children(sibling, node) if bucket >> level & 1 else hash_children(node, sibling)
    built = chain_map.ChainMap()
    for leaf in LEAVES:
        built.append(key, leaf)
    assert built.root() == node
    assert chain_map.ChainMap().root() == chain_map.EMPTY_MAP_ROOT == chain_map.DEFAULTS[16]


def keys_in_one_bucket(count: int) -> list[str]:
    found: dict[int, list[str]] = {}
    i = 0
    while True:
        key = f"uscc:test{i}"
        group = found.setdefault(chain_map.bucket_of(chain_map.key_hash(key)), [])
        group.append(key)
        if len(group) == count:
            return group
        i += 1


def test_a_map_proof_shows_a_chain_among_others_in_its_bucket() -> None:
    a, b = keys_in_one_bucket(2)
    built = chain_map.ChainMap()
    for i, leaf in enumerate(LEAVES):
        built.append(a if i % 2 else b, leaf)
    built.append("uscc:elsewhere", LEAVES[0])
    root = built.root()
    proof = built.proof(a)
    assert len(proof.entries) == 2
    proof.check(*chain_map.chain_head(LEAVES[1::2]), root)
    with pytest.raises(chain_map.MapProofError, match="the map holds 2 events"):
        proof.check(*chain_map.chain_head(LEAVES[1:2]), root)
    with pytest.raises(chain_map.MapProofError, match="head of chain"):
        proof.check(*chain_map.chain_head(LEAVES[2:4]), root)
    with pytest.raises(chain_map.MapProofError, match="does not lead"):
        proof.check(*chain_map.chain_head(LEAVES[1::2]), bytes(32))


def test_a_map_proof_shows_a_chain_is_absent() -> None:
    a, b = keys_in_one_bucket(2)
    built = chain_map.ChainMap()
    built.append(a, LEAVES[0])
    root = built.root()
    chains_b = built.proof(b)
    chains_b.check(0, chain_map.EMPTY_HEAD, root)
    with pytest.raises(chain_map.MapProofError, match="the map has no chain"):
        chains_b.check(1, chain_map.extend(chain_map.EMPTY_HEAD, LEAVES[0]), root)
    with pytest.raises(chain_map.MapProofError, match="the extract none"):
        built.proof(a).check(0, chain_map.EMPTY_HEAD, root)


def test_incremental_roots_equal_a_fresh_fold() -> None:
    # chains alone in their buckets and chains sharing one: a root taken between appends keeps
    # each chain's entry hash, which must follow the chain, never go stale beside a neighbour's
    keys = [f"rid:{i}" for i in range(37)] + keys_in_one_bucket(4)
    step = chain_map.ChainMap()
    for i in range(300):
        step.append(keys[i % len(keys)], sha(i.to_bytes(4, "big")))
        if i % 7 == 0:
            step.root()
    fresh = chain_map.ChainMap()
    for i in range(300):
        fresh.append(keys[i % len(keys)], sha(i.to_bytes(4, "big")))
    assert step.root() == fresh.root()
    shared = keys[-1]
    bucket = chain_map.bucket_of(chain_map.key_hash(shared))
    entries = [(k, n, h) for k, (n, h) in step.buckets[bucket].items()]
    assert len(entries) == 4
    proof = step.proof(shared)  # and the root is the one the definition gives
    assert chain_map.root_from_path(bucket, chain_map.bucket_hash(entries),
                                    proof.path) == step.root()


# -- the log's chain key against the event's content (verify check 5) --------------------------

SUBJECT = "uscc:91350100M000100Y43"
OTHER = "uscc:91330185MA00000000"


def parsed_verdict(payload: bytes, subject: str | None) -> str | None:
    """check_chain_key as its definition reads, parsing every payload: what the fast reading
    of the written form must always agree with."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    named = value.get("subject") if isinstance(value, dict) else None
    if isinstance(named, str) and named != subject:
        return f"the log files it under subject {subject!r}, the event names {named!r}"
    if named is None and subject is not None:
        return f"the log files it under subject {subject!r}, the event names none"
    return None


TRICKY_PAYLOADS = [
    # as the ledger writes it
    b'{"originator_topic":"domain.records:CreditRecord","subject":"%s","kind":"x"}',
    # a second subject key overrides the first for a JSON parser
    b'{"originator_topic":"t","subject":"%s","subject":"' + OTHER.encode() + b'"}',
    # the same key spelled with an escape
    b'{"originator_topic":"t","subject":"%s","\\u0073ubject":"' + OTHER.encode() + b'"}',
    # the subject's value with an escape in it
    b'{"originator_topic":"t","subject":"%s\\u0041"}',
    # the subject only in a nested object
    b'{"originator_topic":"t","inner":{"subject":"%s"}}',
    # the written prefix, then not JSON
    b'{"originator_topic":"t","subject":"%s",',
    # the written prefix, then a second object
    b'{"originator_topic":"t","subject":"%s"}{"subject":"' + OTHER.encode() + b'"}',
    # the subject named as a value elsewhere as well
    b'{"originator_topic":"t","subject":"%s","note":"subject"}',
    # not UTF-8 after the subject
    b'{"originator_topic":"t","subject":"%s","name":"\xff"}',
    # no subject key at all
    b'{"originator_topic":"t","name":"%s"}',
]


@pytest.mark.parametrize("template", TRICKY_PAYLOADS)
@pytest.mark.parametrize("logged", [SUBJECT, OTHER, None])
def test_the_chain_key_check_reads_a_subject_as_a_json_parser_does(template: bytes,
                                                                    logged: str | None) -> None:
    payload = template.replace(b"%s", SUBJECT.encode())
    topic = "domain.records:CreditRecord.Submitted"
    assert (check_chain_key(1, "oid", 1, topic, payload, "CreditRecord", logged)
            == parsed_verdict(payload, logged))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["subject", "originator_topic", "kind", "s"]),
                       st.one_of(st.text(max_size=6), st.none(), st.integers(),
                                 st.dictionaries(st.just("subject"), st.text(max_size=3))),
                       max_size=4),
       st.sampled_from([SUBJECT, "", "a", None]), st.booleans())
def test_any_payload_gets_the_verdict_of_parsing_it(value: dict[str, object],
                                                    logged: str | None, ascii_only: bool) -> None:
    payload = json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode()
    topic = "domain.records:CreditRecord.Submitted"
    assert (check_chain_key(1, "oid", 1, topic, payload, "CreditRecord", logged)
            == parsed_verdict(payload, logged))
