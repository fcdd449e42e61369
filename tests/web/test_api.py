"""The HTTP API over a copy of the demo city, on SQLite and PostgreSQL: tokens (issued, revoked,
forged), the role × endpoint matrix generated from domain/permissions.py, a department's batch
over HTTP equal to the same file by `credit import`, problem documents, and nothing written by
a refused request."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from domain.permissions import COMMANDS, ROLES
from ledger.application import CreditLedger
from ledger.settings import Settings
from tests.conftest import ENTERPRISE, copy_of
from tests.e2e.test_cli import Credit
from web import create_app
from workflows.services import CreditServices
from workflows.session import read_only
from workflows.tokens import Tokens

ROOT = Path(__file__).resolve().parents[2]
PRINCIPALS = {"platform": "platform", "credit_office": "credit-office", "department": "tax",
              "subject": f"subject:{ENTERPRISE.key}", "auditor": "auditor:审计员",
              "court": "court:临安区人民法院", "agency": "agency:临安区公共资源交易中心"}


def issue(settings: Settings, principal: str) -> str:
    ledger = CreditLedger(settings)
    try:
        return Tokens(ledger).issue("credit-office", principal, "test").bearer
    finally:
        ledger.close()


def events(settings: Settings) -> int:
    return Credit(settings.database_url, settings.keys_dir).events()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status and body["title"] and "Traceback" not in body["detail"]
    return body


def record(n: int) -> dict[str, Any]:
    return {"subject": ENTERPRISE.key, "item_code": "TAX-PENALTY",
            "decision_number": f"临税罚〔2026〕API{n}号", "decision_date": "2026-10-01",
            "summary": "逾期申报"}


def test_a_token_speaks_for_its_principal_until_revoked(client: FlaskClient,
                                                         city: Settings) -> None:
    token = issue(city, "tax")
    made = client.post("/api/records", json=record(1), headers=bearer(token))
    assert made.status_code == 201 and made.get_json()["submitted"] == 1
    ledger = CreditLedger(city)
    try:
        tokens = Tokens(ledger)
        listed = [t for t in tokens.listed() if t["principal"] == "tax"]
        assert listed and token.split(".")[1] not in json.dumps(listed)  # never the secret
        tokens.revoke("credit-office", UUID(listed[-1]["token_id"]), "离职")
    finally:
        ledger.close()
    before = events(city)
    is_problem(client.post("/api/records", json=record(2), headers=bearer(token)), 401)
    is_problem(client.post("/api/records", json=record(2),
                           headers=bearer(token[:-3] + "abc")), 401)
    is_problem(client.post("/api/records", json=record(2),
                           headers={"Authorization": "Basic dGF4OnRheA=="}), 401)
    assert events(city) == before


def test_a_token_minted_by_writing_to_the_database_is_refused(client: FlaskClient,
                                                              city: Settings) -> None:
    """Write access to the database, no credit-office key: rewrite a token's digest to one
    whose secret the attacker chose. The signature no longer matches: 401."""
    token = issue(city, "tax")
    token_hex, secret = token.removeprefix("clt_").split(".")
    chosen = "A" * 43
    old = hashlib.sha256(secret.encode()).hexdigest().encode()
    new = hashlib.sha256(chosen.encode()).hexdigest().encode()
    engine = create_engine(city.database_url)
    try:
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT id, state FROM credit_events")).all()
            changed = [(nid, bytes(state).replace(old, new)) for nid, state in rows
                       if old in bytes(state)]
            assert len(changed) == 1
            conn.execute(text("UPDATE credit_events SET state = :state WHERE id = :id"),
                         {"state": changed[0][1], "id": changed[0][0]})
    finally:
        engine.dispose()
    forged = f"clt_{token_hex}.{chosen}"
    is_problem(client.post("/api/records", json=record(3), headers=bearer(forged)), 401)
    is_problem(client.post("/api/records", json=record(3), headers=bearer(token)), 401)


# -- the role × endpoint matrix, from the table in code ------------------------------------


def endpoints(record_id: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """command -> (method, path, body or query) that runs it."""
    return {
        "record.submit": ("POST", "/api/records", record(100)),
        "record.correct": ("POST", f"/api/records/{record_id}/correction",
                           {"reason": "笔误", "changes": {"summary": "更正后"}}),
        "record.revoke": ("POST", f"/api/records/{record_id}/revocation", {"reason": "撤销"}),
        "read.queries": ("GET", "/api/queries", {}),
        "read.file": ("GET", f"/api/subjects/{ENTERPRISE.key}", {"purpose": "核查"}),
        "read.known_at": ("GET", f"/api/subjects/{ENTERPRISE.key}",
                          {"purpose": "核查", "known_at": "2026-01-01"}),
        "extract.issue": ("POST", f"/api/subjects/{ENTERPRISE.key}/extract", {"purpose": "核查"}),
    }


@pytest.fixture
def matrix_city(backend: str, template_root: Path, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flask, Settings, str]]:
    """A city copy with a tax record to correct and revoke."""
    with copy_of("city", backend, tmp_path) as settings:
        monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "reports"))
        app = create_app(settings)
        client = app.test_client()
        made = client.post("/api/records", json=record(0),
                           headers=bearer(issue(settings, "tax")))
        assert made.status_code == 201
        yield app, settings, made.get_json()["record_ids"][0]
        app.extensions["credit_door"].close()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_against_every_endpoint(matrix_city: tuple[Flask, Settings, str],
                                           role: str) -> None:
    app, settings, record_id = matrix_city
    client = app.test_client()
    headers = {} if role == "public" else bearer(issue(settings, PRINCIPALS[role]))
    for command, (method, path, payload) in endpoints(record_id).items():
        allowed = role in COMMANDS[command].roles
        if command == "extract.issue" and role == "public":
            allowed = True  # the public's own door: extract.public, for a wholly public file
        if command == "read.file" and role == "subject":
            allowed = True  # its own file (read.own)
        before = events(settings)
        if method == "GET":
            response = client.get(path, query_string=payload, headers=headers)
        else:
            response = client.post(path, json=payload, headers=headers)
        if command == "read.file":  # never refused: who may not see the whole sees the public
            assert response.status_code == 200, (role, response.get_json())
            assert response.get_json()["view"] == ("full" if allowed else "public"), role
            continue
        if allowed:
            assert response.status_code not in (401, 403), (role, command, response.get_json())
            assert response.status_code < 500, (role, command, response.get_json())
        else:
            writes = command.startswith("record.")
            expected = 401 if role == "public" and writes else 403
            is_problem(response, expected)
            assert events(settings) == before, (role, command, "a refused request wrote")


def test_a_batch_over_http_equals_the_same_file_by_the_cli(backend: str, template_root: Path,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    batch = (ROOT / "examples" / "tax.jsonl").read_bytes()
    states = []
    with copy_of("city", backend, tmp_path / "http") as settings:
        monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "reports"))
        app = create_app(settings)
        written = app.test_client().post("/api/records/batch", data=batch,
                                         content_type="application/x-ndjson",
                                         headers=bearer(issue(settings, "tax")))
        app.extensions["credit_door"].close()
        assert written.status_code == 201, written.get_json()
        states.append(subject_files(settings))
    with copy_of("city", backend, tmp_path / "cli") as settings:
        credit = Credit(settings.database_url, settings.keys_dir)
        issue(settings, "tax")  # the same events before the batch: a token issued
        credit("import", str(ROOT / "examples" / "tax.jsonl"), "--as", "tax")
        states.append(subject_files(settings))
    assert states[0] == states[1]
    assert written.get_json()["rows"] == len(batch.splitlines())


def subject_files(settings: Settings) -> dict[str, Any]:
    """Each subject of the example file's whole state, as the credit office reads it."""
    ledger = CreditLedger(read_only(settings))
    try:
        services = CreditServices(ledger)
        keys = {json.loads(line)["subject"] for line in
                (ROOT / "examples" / "tax.jsonl").read_text().splitlines()}
        found = {}
        for key in sorted(keys):
            state = services.state(key)
            found[key] = [{k: r[k] for k in ("id", "item_code", "decision_number", "status",
                                              "summary")} for r in state["records"]]
        return found
    finally:
        ledger.close()


def test_refusals_are_problem_documents_and_write_nothing(app: Flask, client: FlaskClient,
                                                          city: Settings) -> None:
    token = bearer(issue(city, "tax"))
    before = events(city)
    bad = client.post("/api/records/batch", data=b'{"subject": "uscc:1"}\nnot json\n',
                      content_type="application/x-ndjson", headers=token)
    body = is_problem(bad, 422)
    assert [e["line"] for e in body["errors"]] == [1, 2]
    fields = is_problem(client.post("/api/records", json={"subject": "uscc:x"}, headers=token),
                        422)
    assert {e["field"] for e in fields["errors"]} >= {"json.item_code", "json.summary"}
    is_problem(client.post("/api/records/batch", data=b"x", content_type="text/plain",
                           headers=token), 415)
    is_problem(client.get("/api/nowhere"), 404)
    is_problem(client.delete("/api/records"), 405)
    person = is_problem(client.get("/api/subjects/rid:11010519491231002X"), 404)
    assert "11010519491231002X" not in json.dumps(person, ensure_ascii=False)
    app.config["MAX_CONTENT_LENGTH"] = 1024
    is_problem(client.post("/api/records/batch", data=b"x" * 4096,
                           content_type="application/x-ndjson", headers=token), 413)
    assert events(city) == before
    first = client.post("/api/records", json=record(7), headers=token)
    assert first.status_code == 201
    again = is_problem(client.post("/api/records", json=record(7), headers=token), 409)
    assert again["errors"][0]["reason"] == "this record is already in the ledger"


def test_the_openapi_document_and_its_docs_page_are_served(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and "/api/records" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    page = client.get("/api/docs").get_data(as_text=True)
    assert "POST /api/records/batch" in page and "cdn" not in page.lower()


def test_callers_over_the_rate_limit_are_told_when_to_come_back(app: Flask, client: FlaskClient,
                                                                city: Settings) -> None:
    app.config.update(API_RATE_PUBLIC=3, API_RATE_TOKEN=5)
    for _ in range(3):
        assert client.get("/api/checkpoints").status_code == 200
    limited = client.get("/api/checkpoints")
    is_problem(limited, 429)
    assert int(limited.headers["Retry-After"]) >= 1
    token = bearer(issue(city, "auditor:审计员"))  # a token has its own, larger allowance
    assert all(client.get("/api/queries", headers=token).status_code == 200 for _ in range(5))
    is_problem(client.get("/api/queries", headers=token), 429)
    assert client.get("/").status_code == 200  # the window's pages are not the API's


def test_the_registry_is_public_and_policies_are_the_office_s(client: FlaskClient,
                                                              city: Settings) -> None:
    keys = client.get("/api/keys").get_json()["keys"]
    assert {"platform", "tax"} <= {k["authority"] for k in keys}
    listed = client.get("/api/policies").get_json()["policies"]
    assert ("measures", "2026.1") in {(p["kind"], p["version"]) for p in listed}
    document = json.loads((ROOT / "domain" / "policies" / "measures-2026.json").read_text())
    document.update(version="2027.1", effective_from="2027-01-01")
    before = events(city)
    is_problem(client.post("/api/policies", json=document,
                           headers=bearer(issue(city, "tax"))), 403)
    is_problem(client.post("/api/policies", json={**document, "kind": "lottery"},
                           headers=bearer(issue(city, "credit-office"))), 422)
    assert events(city) == before + 2  # the two tokens only
    office = bearer(issue(city, "credit-office"))
    made = client.post("/api/policies", json=document, headers=office)
    assert made.status_code == 201 and made.get_json()["version"] == "2027.1"
    is_problem(client.post("/api/policies", json=document, headers=office), 409)
