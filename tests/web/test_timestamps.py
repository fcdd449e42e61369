"""RFC 3161 timestamps of checkpoints, on SQLite and PostgreSQL, from a real local TSA
(`openssl ts -reply` behind a small HTTP responder, tests/tsa/responder.py, in its own
process): an extract carries its checkpoint's token and the verifier checks it with the TSA's
certificate; a token over other bytes, or none, is INVALID."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from domain import clock
from ledger.application import CreditLedger
from ledger.settings import Settings
from proofs.jws import sign
from tests.conftest import ENTERPRISE, free_port, wait_until_answering
from tests.tsa.responder import make_tsa
from tests.web.test_api import bearer, issue
from workflows.timestamps import request_token

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL, folder with tsa.pem and ca.pem) of a TSA running in its own process."""
    folder = tmp_path_factory.mktemp("tsa")
    make_tsa(folder)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.tsa.responder", str(folder),
                                str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_answering(url)
        yield url, folder
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_extract_carries_a_tsa_timestamp_the_verifier_checks(
        client: FlaskClient, city: Settings, tsa: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = tsa
    (city.keys_dir / "tsa.json").write_text(json.dumps({
        "url": url, "certificate": str(folder / "tsa.pem"), "roots": [str(folder / "ca.pem")]}))
    answer = client.post(f"/api/subjects/{ENTERPRISE.key}/extract", json={"purpose": "核查"},
                         headers=bearer(issue(city, "credit-office")))
    assert answer.status_code == 201
    extract = tmp_path / "extract.json"
    extract.write_bytes(answer.get_data())
    trust = tmp_path / "platform.pem"
    trust.write_bytes(client.get("/transparency/platform.pem").get_data())

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", "verify-extract", str(extract),
                               "--trust", str(trust), "--tsa-cert", str(folder / "tsa.pem"),
                               "--tsa-root", str(folder / "ca.pem"), "--json"], cwd=ROOT,
                              capture_output=True, text=True)

    stamped = verify()
    assert stamped.returncode == 0, stamped.stdout + stamped.stderr
    assert json.loads(stamped.stdout)["timestamp"]["tsa"] == "CN=Test TSA"
    # the same file with a genuine token of the same TSA, over other bytes: the platform cannot
    # move a timestamp from one checkpoint to another
    signed = json.loads(extract.read_text())
    payload = json.loads(base64.urlsafe_b64decode(signed["payload"] + "=="))
    assert payload["timestamp"]
    other = base64.b64encode(request_token(url, b"another checkpoint")).decode()
    ledger = CreditLedger(city)  # re-signing needs the platform key: the platform's own attack
    try:
        key, signer = ledger.platform_signer(clock.now())
        for token in (other, None):
            changed = {k: v for k, v in payload.items() if k != "timestamp"}
            if token is not None:
                changed["timestamp"] = token
            body = json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode()
            extract.write_text(json.dumps(sign(body, {"alg": "Ed25519", "kid": key.kid,
                                                      "typ": "credit-extract+json"},
                                               signer.sign)))
            refused = verify()
            assert refused.returncode == 1, refused.stdout
            assert json.loads(refused.stdout)["check"] == "timestamp", refused.stdout
    finally:
        ledger.close()
