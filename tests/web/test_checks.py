"""Credit checks over HTTP (信用核查), on SQLite and PostgreSQL: the answer names the lists in
force and only the measures of the matter, the check is recorded and listed for auditors, and
the receipt is VALID by the court's verifier — and INVALID once a word of it is changed."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from keys.signer import public_key_from_pem
from ledger.settings import Settings
from proofs.verify_extract import run
from tests.conftest import BARRED, ENTERPRISE
from tests.web.test_api import bearer, events, is_problem, issue


def payload_of(document: dict[str, Any]) -> dict[str, Any]:
    body = document["payload"]
    loaded: dict[str, Any] = json.loads(urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return loaded


def verdict(document: dict[str, Any], city: Settings, tmp_path: Path) -> tuple[bool, Any]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(document, ensure_ascii=False))
    key = public_key_from_pem((city.keys_dir / "trusted-platform.pem").read_bytes())
    valid, data, _ = run(path, key)
    return valid, data


def test_a_barred_subject_is_told_barred_for_the_matter_with_its_measures(
        client: FlaskClient, city: Settings, tmp_path: Path) -> None:
    agency = bearer(issue(city, "agency:临安区公共资源交易中心"))
    made = client.post("/api/checks", json={"subject": BARRED.key, "matter": "procurement",
                                            "case_number": "LAZC-2026-118"}, headers=agency)
    assert made.status_code == 201 and made.mimetype == "application/credit-check-receipt+json"
    receipt = made.get_json()
    told = payload_of(receipt)["answer"]
    assert told["barred"] is True and told["known"] is True
    (black,) = told["lists"]
    assert [m["code"] for m in black["measures"]] == ["NO-PROCUREMENT"]  # the matter's only
    valid, data = verdict(receipt, city, tmp_path)
    assert valid and data["kind"] == "check-receipt" and data["barred"] is True
    assert data["checked_by"] == "agency:临安区公共资源交易中心"
    # a land sale is told the land measure, not procurement's
    land = client.post("/api/checks", json={"subject": BARRED.key, "matter": "land",
                                            "case_number": "LAGT-2026-7"}, headers=agency)
    assert [m["code"] for m in payload_of(land.get_json())["answer"]["lists"][0]["measures"]] \
        == ["NO-LAND"]
    clean = client.post("/api/checks", json={"subject": ENTERPRISE.key, "matter": "procurement",
                                             "case_number": "LAZC-2026-119"}, headers=agency)
    assert payload_of(clean.get_json())["answer"]["barred"] is False


def test_checks_are_recorded_and_auditors_see_who_was_told_what(client: FlaskClient,
                                                                 city: Settings) -> None:
    tax = bearer(issue(city, "tax"))
    before = events(city)
    client.post("/api/checks", json={"subject": BARRED.key, "matter": "subsidy",
                                     "case_number": "LACZ-2026-3"}, headers=tax)
    assert events(city) == before + 1
    listed = client.get("/api/checks", query_string={"subject": BARRED.key},
                        headers=bearer(issue(city, "auditor:审计员"))).get_json()["checks"]
    assert [(c["checked_by"], c["matter"], c["case_number"], c["answer"]["barred"],
             c["signed_by"].split("-")[0]) for c in listed] == [
        ("tax", "subsidy", "LACZ-2026-3", True, "tax")]
    is_problem(client.get("/api/checks", headers=tax), 403)  # a department: not the log
    for refused in ({"subject": BARRED.key, "matter": "lottery", "case_number": "1"},
                    {"subject": BARRED.key, "matter": "land"}):
        is_problem(client.post("/api/checks", json=refused, headers=tax), 422)
    is_problem(client.post("/api/checks", json={"subject": BARRED.key, "matter": "land",
                                                "case_number": "1"}), 401)
    is_problem(client.post("/api/checks", json={"subject": BARRED.key, "matter": "land",
                                                "case_number": "1"},
                           headers=bearer(issue(city, f"subject:{BARRED.key}"))), 403)
    assert events(city) == before + 1 + 2  # the check, and the two tokens issued


def test_a_changed_receipt_is_invalid_with_the_check_named(client: FlaskClient, city: Settings,
                                                           tmp_path: Path) -> None:
    agency = bearer(issue(city, "agency:临安区公共资源交易中心"))
    receipt = client.post("/api/checks", json={"subject": BARRED.key, "matter": "bidding",
                                               "case_number": "LAZB-1"},
                          headers=agency).get_json()
    payload = payload_of(receipt)
    payload["answer"]["barred"] = False
    forged = {**receipt, "payload": urlsafe_b64encode(json.dumps(payload, ensure_ascii=False)
                                                      .encode()).rstrip(b"=").decode()}
    valid, data = verdict(forged, city, tmp_path)
    assert not valid and data["check"] == "extract-signature"
