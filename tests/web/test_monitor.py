"""The monitor, on SQLite and PostgreSQL: it cosigns the log's checkpoints only once its own
mirror has verified them, chain map included. A platform holding its key signs a checkpoint
whose chain map leaves a subject's event out: a plain witness cosigns it (it checks only that
the tree grew), the monitor refuses it."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask.testing import FlaskClient
from sqlalchemy import select

from domain import clock
from ledger import tables
from ledger.application import CreditLedger
from ledger.settings import Settings
from proofs import chain_map
from proofs.checkpoint import make_checkpoint, parse_checkpoint
from proofs.cosignature import split_note, verify_cosignature
from tests.web.test_api import bearer, issue, record
from tests.web.test_mirror import fetcher, platform_key
from tests.web.test_witness import ORIGIN, notes, proof
from workflows.mirror import Mirror
from workflows.monitor import Monitor
from workflows.witness import Witness
from workflows.witnesses import request_body


def monitor_of(client: FlaskClient, database_url: str, state: Path,
               serve: object = None) -> Monitor:
    key = Ed25519PrivateKey.generate()
    platform = platform_key(client)
    witness = Witness("audit.zhejiang/monitor", key, ORIGIN, [platform], state)
    return Monitor(witness, Mirror(database_url, platform),
                   serve if serve is not None else fetcher(client))  # type: ignore[arg-type]


def test_the_monitor_cosigns_what_its_mirror_verified(client: FlaskClient, city: Settings,
                                                      database_url: str, tmp_path: Path) -> None:
    monitor = monitor_of(client, database_url, tmp_path / "state.json")
    try:
        (_, first) = notes(city)[-1]
        answer = monitor.add_checkpoint(request_body(0, [], first))
        assert answer.status == 200, answer.body
        verify_cosignature(answer.body, monitor.name,
                           monitor.witness.public_key, split_note(first)[0])
        client.post("/api/records", json=record(90), headers=bearer(issue(city, "tax")))
        (_, second) = notes(city)[-1]
        old = parse_checkpoint(first).tree_size
        grown = monitor.add_checkpoint(request_body(
            old, proof(city, old, parse_checkpoint(second).tree_size), second))
        assert grown.status == 200, grown.body  # its mirror caught up first
    finally:
        monitor.mirror.close()


def test_a_chain_map_that_leaves_an_event_out_is_refused_by_the_monitor(
        client: FlaskClient, city: Settings, database_url: str, tmp_path: Path) -> None:
    (_, true_note) = notes(city)[-1]
    true = parse_checkpoint(true_note)
    ledger = CreditLedger(city)
    try:
        # the platform's own chain map, but one subject's chain one event short
        with ledger.engine.connect() as conn:
            heads = chain_map.ChainMap()
            log = tables.log
            rows = conn.execute(select(log.c.subject, log.c.stream, log.c.leaf_hash)
                                .order_by(log.c.position)).all()
        left_out = max(i for i, (subject, _, _) in enumerate(rows) if subject is not None)
        for i, (subject, stream, leaf) in enumerate(rows):
            if i != left_out:
                heads.append(chain_map.chain_key(subject, stream), bytes(leaf))
        assert heads.root() != true.chain_root
        key, signer = ledger.platform_signer(clock.now())
        forged = make_checkpoint(true.origin, true.tree_size, true.root_hash, clock.now(),
                                 heads.root(), key.kid, key.public_key, signer.sign)
    finally:
        ledger.close()
    forged_note = forged.note
    serve = fetcher(client)

    def lying(path: str) -> bytes | None:  # the log serves the forged checkpoint
        return forged_note.encode() if path == "checkpoint" else serve(path)

    witness = Witness("court.linan/witness", Ed25519PrivateKey.generate(), ORIGIN,
                      [platform_key(client)], tmp_path / "witness.json")
    assert witness.add_checkpoint(request_body(0, [], forged_note)).status == 200
    monitor = monitor_of(client, database_url, tmp_path / "monitor.json", lying)
    try:
        refused = monitor.add_checkpoint(request_body(0, [], forged_note))
        assert refused.status == 422 and "chain map" in refused.body, refused.body
        assert monitor.witness.latest() is None  # nothing cosigned, nothing recorded
        assert monitor.mirror.status() is None  # and nothing of the log kept
    finally:
        monitor.mirror.close()
