"""Witnesses (C2SP tlog-witness, tlog-cosignature/v1) on SQLite and PostgreSQL: a witness runs
as its own process with its own key and state; the platform publishes its checkpoints to it and
keeps the cosignatures; a fork (the platform's key and a second database) and a rollback are
refused; every answer of add-checkpoint is the spec's."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select

from keys.signer import public_key_from_pem
from ledger import tables
from ledger.application import CreditLedger
from ledger.settings import Settings
from ledger.tables import stored_nodes
from proofs import merkle
from proofs.checkpoint import parse_checkpoint
from proofs.cosignature import split_note, verify_cosignature
from tests.conftest import ENTERPRISE, free_port, wait_until_answering
from tests.web.test_api import bearer, issue, record
from tests.web.test_mirror import other_city  # noqa: F401 - a fixture
from workflows.extracts import checkpoint_listing
from workflows.session import read_only
from workflows.witness import Witness
from workflows.witnesses import WitnessConfig, publish, request_body

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "credit-ledger.linan/log"


def notes(settings: Settings) -> list[tuple[int, str]]:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            c = tables.checkpoints
            return [(int(s), str(n)) for s, n in conn.execute(select(c.c.seq, c.c.note)
                                                              .order_by(c.c.seq))]
    finally:
        engine.dispose()


def proof(settings: Settings, old: int, new: int) -> list[bytes]:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return merkle.consistency_proof(old, new, stored_nodes(conn)) if 0 < old < new else []
    finally:
        engine.dispose()


def test_add_checkpoint_answers_as_the_spec_says(client: FlaskClient, city: Settings,
                                                 tmp_path: Path) -> None:
    platform = public_key_from_pem(client.get("/transparency/platform.pem").get_data())
    key = Ed25519PrivateKey.generate()
    witness = Witness("court.linan/witness", key, ORIGIN, [platform], tmp_path / "state.json")
    (_, first), *_, (_, last) = notes(city)
    small, big = parse_checkpoint(first).tree_size, parse_checkpoint(last).tree_size
    assert witness.add_checkpoint(b"nonsense").status == 400
    assert witness.add_checkpoint(request_body(0, [], first.replace(ORIGIN, "x.example/log",
                                                                     1))).status == 404
    forged = first.replace(f"\n{small}\n", f"\n{small + 1}\n", 1)
    assert witness.add_checkpoint(request_body(0, [], forged)).status == 403
    unsigned = split_note(first)[0] + "\n— someone.else AAAA\n"
    assert witness.add_checkpoint(request_body(0, [], unsigned)).status == 403
    taken = witness.add_checkpoint(request_body(0, [], first))
    assert taken.status == 200
    body = split_note(first)[0]
    assert verify_cosignature(taken.body, "court.linan/witness",
                              key.public_key().public_bytes_raw(), body).timestamp > 0
    conflict = witness.add_checkpoint(request_body(0, [], last))
    assert (conflict.status, conflict.body, conflict.content_type) == (
        409, f"{small}\n", "text/x.tlog.size")
    assert witness.add_checkpoint(request_body(big, [], first)).status == 400  # old > new
    wrong = proof(city, small, big)
    wrong[0] = bytes(32)
    assert witness.add_checkpoint(request_body(small, wrong, last)).status == 422
    assert witness.latest() == (small, parse_checkpoint(first).root_hash)  # nothing recorded
    assert witness.add_checkpoint(request_body(small, proof(city, small, big), last)).status \
        == 200
    assert witness.latest() == (big, parse_checkpoint(last).root_hash)


@pytest.fixture
def witness_process(client: FlaskClient, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """`credit witness serve` in its own process: (url, its public key file, its state)."""
    platform = tmp_path / "platform.pem"
    platform.write_bytes(client.get("/transparency/platform.pem").get_data())
    key = tmp_path / "witness" / "key.pem"
    made = subprocess.run([sys.executable, "-m", "cli", "witness", "keygen", "--key", str(key)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    public = tmp_path / "witness.pem"
    public.write_text(made.stdout)
    port = free_port()
    state = tmp_path / "witness" / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "witness", "serve", "--name", "court.linan/witness",
         "--key", str(key), "--origin", ORIGIN, "--log-key", str(platform), "--state",
         str(state), "--port", str(port)], cwd=ROOT, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url + "/add-checkpoint")
        yield url, public, state
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_platform_publishes_to_a_witness_process_that_refuses_a_fork(
        client: FlaskClient, city: Settings, other_city: Flask,  # noqa: F811
        witness_process: tuple[str, Path, Path]) -> None:
    url, public, state = witness_process
    config = [WitnessConfig("court.linan/witness", url, public_key_from_pem(public.read_bytes()))]
    ledger = CreditLedger(read_only(city))
    try:
        (first,) = publish(ledger, config)
        assert first.cosignature is not None, first.outcome
        made = client.post("/api/records", json=record(70), headers=bearer(issue(city, "tax")))
        assert made.status_code == 201
        (second,) = publish(ledger, config)  # with a consistency proof from the first
        assert second.cosignature is not None and second.tree_size > first.tree_size
        listed = checkpoint_listing(ledger)
        assert listed[-1]["cosignatures"] == [second.cosignature]
    finally:
        ledger.close()
    assert json.loads(state.read_text())[ORIGIN]["size"] == second.tree_size
    # the platform, holding its key and another database, shows the witness a diverging log
    theirs = other_city.extensions["settings"]
    other = other_city.test_client()
    for n in range(71, 75):
        other.post("/api/records", json=record(n), headers=bearer(issue(theirs, "tax")))
    forked = CreditLedger(read_only(theirs))
    try:
        (refused,) = publish(forked, config)
    finally:
        forked.close()
    assert refused.cosignature is None and "422" in refused.outcome, refused.outcome
    assert json.loads(state.read_text())[ORIGIN]["size"] == second.tree_size
    # a rollback: an older checkpoint of the true log, claimed from the size the witness holds
    (_, older), *_ = notes(city)
    answer = urllib.request.Request(url + "/add-checkpoint", method="POST",
                                    data=request_body(second.tree_size, [], older))
    with pytest.raises(urllib.error.HTTPError) as rolled_back:
        urllib.request.urlopen(answer, timeout=10)
    assert rolled_back.value.code == 400
    assert base64.b64decode(json.loads(state.read_text())[ORIGIN]["root"]) == \
        parse_checkpoint(notes(city)[-1][1]).root_hash


def test_an_extract_carries_cosignatures_and_the_verifier_counts_its_quorum(
        client: FlaskClient, city: Settings, other_city: Flask,  # noqa: F811
        witness_process: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, public, _ = witness_process
    name = "court.linan/witness"
    config = [{"name": name, "url": url, "key": str(public)}]
    (city.keys_dir / "witnesses.json").write_text(json.dumps(config))
    office = bearer(issue(city, "credit-office"))
    answer = client.post(f"/api/subjects/{ENTERPRISE.key}/extract", json={"purpose": "核查"},
                         headers=office)
    assert answer.status_code == 201
    extract = tmp_path / "extract.json"
    extract.write_bytes(answer.get_data())
    trust = tmp_path / "platform.pem"
    trust.write_bytes(client.get("/transparency/platform.pem").get_data())
    stranger = tmp_path / "stranger.pem"
    stranger.write_text(subprocess.run(
        [sys.executable, "-m", "cli", "witness", "keygen", "--key", str(tmp_path / "s.key")],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout)

    def verify(*witnesses: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "proofs.verify_extract", str(extract),
                               "--trust", str(trust), *witnesses, "--json"], cwd=ROOT,
                              capture_output=True, text=True)

    cosigned = verify("--witness", name, str(public))
    assert cosigned.returncode == 0, cosigned.stdout
    assert json.loads(cosigned.stdout)["witnesses"] == [name]
    both = verify("--witness", name, str(public), "--witness", "commission.linan/witness",
                  str(stranger))
    assert both.returncode == 1
    failed = json.loads(both.stdout)
    assert failed["check"] == "witnesses"
    assert "commission.linan/witness: no cosignature" in failed["reason"]
    assert verify("--witness", name, str(public), "--witness", "commission.linan/witness",
                  str(stranger), "--quorum", "1").returncode == 0
    impostor = verify("--witness", name, str(stranger))  # the right name, another key
    assert impostor.returncode == 1 and "not the trusted key" in json.loads(impostor.stdout)[
        "reason"]
    # the fork: the other database, diverged, asks the same witness, which refuses it; an
    # extract from the fork has no cosignature to show
    theirs = other_city.extensions["settings"]
    (theirs.keys_dir / "witnesses.json").write_text(json.dumps(config))
    other = other_city.test_client()
    other.post("/api/records", json=record(80), headers=bearer(issue(theirs, "tax")))
    forked = other.post(f"/api/subjects/{ENTERPRISE.key}/extract", json={"purpose": "核查"},
                        headers=bearer(issue(theirs, "credit-office")))
    assert forked.status_code == 201
    extract.write_bytes(forked.get_data())
    assert verify().returncode == 0  # valid by the platform's signature alone …
    refused = verify("--witness", name, str(public))
    assert refused.returncode == 1 and json.loads(refused.stdout)["check"] == "witnesses"
