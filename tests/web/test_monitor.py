"""The monitor, on SQLite and PostgreSQL: it cosigns the log's checkpoints only once its own
mirror has verified them, chain map included. A platform holding its key signs a checkpoint
whose chain map leaves a subject's event out: a plain witness cosigns it (it checks only that
the tree grew), the monitor refuses it."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.serving import make_server

from domain import clock
from ledger import tables
from ledger.application import CreditLedger
from ledger.settings import Settings
from proofs import chain_map
from proofs.checkpoint import make_checkpoint, parse_checkpoint
from proofs.cosignature import split_note, verify_cosignature
from tests.conftest import free_port, wait_until_answering
from tests.web.test_api import bearer, issue, record
from tests.web.test_mirror import fetcher, platform_key
from tests.web.test_witness import ORIGIN, notes, proof
from workflows.mirror import Mirror
from workflows.monitor import Monitor
from workflows.witness import Witness
from workflows.witnesses import request_body

ROOT = Path(__file__).resolve().parents[2]


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


def forged_checkpoint(city: Settings) -> str:
    """The platform's own latest checkpoint, re-signed with its key over a chain map in which
    one subject's chain is one event short."""
    (_, true_note) = notes(city)[-1]
    true = parse_checkpoint(true_note)
    ledger = CreditLedger(city)
    try:
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
        return make_checkpoint(true.origin, true.tree_size, true.root_hash, clock.now(),
                               heads.root(), key.kid, key.public_key, signer.sign).note
    finally:
        ledger.close()


def test_a_chain_map_that_leaves_an_event_out_is_refused_by_the_monitor(
        client: FlaskClient, city: Settings, database_url: str, tmp_path: Path) -> None:
    forged_note = forged_checkpoint(city)
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


def test_a_monitor_process_refuses_a_lying_log_over_http(
        app: Flask, client: FlaskClient, city: Settings, tmp_path: Path) -> None:
    """The same attack with every party its own: the platform's window serves a checkpoint
    whose chain map leaves an event out (a WSGI layer in front of the real tiles), and
    `credit monitor serve` in its own process, reading those tiles over HTTP, refuses it."""
    forged = forged_checkpoint(city)

    def lying(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/log/checkpoint":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [forged.encode()]
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, lying, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    platform = tmp_path / "platform.pem"
    platform.write_bytes(client.get("/transparency/platform.pem").get_data())
    key = tmp_path / "monitor.key"
    subprocess.run([sys.executable, "-m", "cli", "witness", "keygen", "--key", str(key)],
                   cwd=ROOT, capture_output=True, check=True)
    port = free_port()
    monitor = subprocess.Popen(
        [sys.executable, "-m", "cli", "monitor", "serve", "--name", "audit.zhejiang/monitor",
         "--key", str(key), "--origin", ORIGIN, "--log-key", str(platform), "--log-url",
         f"http://127.0.0.1:{server.server_port}/log", "--into",
         f"sqlite:///{tmp_path / 'monitor.db'}", "--state", str(tmp_path / "state.json"),
         "--port", str(port)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/add-checkpoint"
        wait_until_answering(url)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(
                url, data=request_body(0, [], forged), method="POST"), timeout=60)
        assert refused.value.code == 422
        assert "chain map" in refused.value.read().decode()
        assert not (tmp_path / "state.json").exists()  # it cosigned nothing
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
        server.shutdown()
