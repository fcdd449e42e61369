"""The HTTP API over a copy of the demo city, on SQLite and PostgreSQL: tokens (issued, revoked,
forged), the role × endpoint matrix generated from domain/permissions.py, a department's batch
over HTTP equal to the same file by `credit import`, problem documents, and nothing written by
a refused request."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from domain.identifiers import uscc_check_char
from domain.permissions import COMMANDS, ROLES
from ledger.application import CreditLedger
from ledger.settings import Settings
from projections.runner import ProjectionRunner
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


def new_subject() -> str:
    first17 = "91330185MA2B0T5Q9"
    return f"uscc:{first17}{uscc_check_char(first17)}"


def endpoints(case: dict[str, str]) -> list[tuple[str, str, str, Any]]:
    """(command, method, path, body or query) for every endpoint that writes or reads beyond
    the public file. Case numbers that do not exist are refused after the caller is: an allowed
    role gets a 404, a refused one its 401/403."""
    rid = case["record"]
    return [
        ("keys.register", "POST", "/api/keys", {"authority": "matrix-dept", "name_zh": "测试局",
                                                "name_en": "Matrix bureau"}),
        ("keys.rotate", "POST", "/api/keys/rotation", {"authority": "water"}),
        ("keys.revoke", "POST", f"/api/keys/{case['kid']}/revocation", {"reason": "泄露"}),
        ("checkpoint.sign", "POST", "/api/checkpoints", {}),
        ("policy.publish", "POST", "/api/policies", {"kind": "calendar"}),
        ("subject.register", "POST", "/api/subjects", {"subject": new_subject(),
                                                       "name": "临安测试有限公司"}),
        ("subject.rename", "POST", f"/api/subjects/{ENTERPRISE.key}/name",
                           {"name": "临安新名有限公司", "reason": "变更登记"}),
        ("record.submit", "POST", "/api/records", record(100)),
        ("record.correct", "POST", f"/api/records/{rid}/correction",
                           {"reason": "笔误", "changes": {"summary": "更正后"}}),
        ("record.revoke", "POST", f"/api/records/{rid}/revocation", {"reason": "撤销"}),
        ("objection.raise", "POST", "/api/objections", {"subject": ENTERPRISE.key,
                                                        "record": rid, "grounds": "有误"}),
        ("objection.accept", "POST", "/api/objections/YY-0/acceptance", {}),
        ("objection.decline", "POST", "/api/objections/YY-0/declination", {"reason": "不符"}),
        ("objection.extend", "POST", "/api/objections/YY-0/extension", {"reason": "复杂"}),
        ("objection.rule", "POST", "/api/objections/YY-0/ruling",
                           {"outcome": "reject", "reasoning": "无误"}),
        ("objection.review", "POST", "/api/objections/YY-0/review", {"grounds": "仍有异议"}),
        ("repair.apply", "POST", "/api/repairs", {"record": rid, "evidence": ["证明"],
                                                  "commitment": "守信"}),
        ("repair.decide", "POST", "/api/repairs/YY-0/decision", {"approve": False,
                                                                 "reason": "不符"}),
        ("list.add", "POST", "/api/listings", {"list": "red", "subject": ENTERPRISE.key,
                                               "legal_basis": "守信激励", "basis_records": []}),
        ("list.remove", "POST", "/api/listings/YY-0/removal", {"reason": "期满"}),
        ("commitment.make", "POST", "/api/commitments", {"subject": ENTERPRISE.key,
                                                         "text": "依法经营"}),
        ("commitment.settle", "POST", "/api/commitments/YY-0/settlement",
                              {"kept": True, "note": "已履行"}),
        ("check.make", "POST", "/api/checks", {"subject": ENTERPRISE.key,
                                               "matter": "procurement", "case_number": "采购1"}),
        ("token.issue", "POST", "/api/tokens", {"principal": "auditor:新审计员"}),
        ("token.revoke", "POST", f"/api/tokens/{case['token']}/revocation", {"reason": "离职"}),
        ("read.queries", "GET", "/api/queries", {}),
        ("read.file", "GET", f"/api/subjects/{ENTERPRISE.key}", {"purpose": "核查"}),
        ("read.known_at", "GET", f"/api/subjects/{ENTERPRISE.key}",
                          {"purpose": "核查", "known_at": "2026-01-01"}),
        ("extract.issue", "POST", f"/api/subjects/{ENTERPRISE.key}/extract", {"purpose": "核查"}),
        ("record.submit", "POST", "/api/records/batch", [record(101)]),
        ("read.queries", "GET", "/api/checks", {}),
        ("token.issue", "GET", "/api/tokens", {}),
    ]


# reads that are not one endpoint of their own: the public's (every GET without a token), a
# subject's own file (read.file as the subject) and the public report (extract.issue, public)
NOT_AN_ENDPOINT = {"read.public", "read.own", "extract.public"}


def test_every_command_and_every_operation_is_in_the_matrix(client: FlaskClient) -> None:
    """A new command or endpoint cannot escape the matrix."""
    table = endpoints({"record": "R", "kid": "K", "token": "T"})
    assert set(COMMANDS) - NOT_AN_ENDPOINT == {command for command, *_ in table}
    document = client.get("/api/openapi.json").get_json()
    covered = {(method, _template(path)) for _, method, path, _ in table}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            token_required = operation.get("security") == [{"bearer": []}]
            if token_required:
                assert (method.upper(), path) in covered, (method, path)


def _template(path: str) -> str:
    """/api/records/R/correction -> /api/records/{record_id}/correction, as OpenAPI writes it."""
    parts = path.split("/")
    names = {"records": "record_id", "keys": "kid", "tokens": "token_id", "subjects": "key"}
    if len(parts) >= 5 and parts[2] in names:
        parts[3] = "{" + names[parts[2]] + "}"
    elif len(parts) >= 5:
        parts[3] = "{number}"
    return "/".join(parts)


@pytest.fixture
def matrix_city(backend: str, template_root: Path, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flask, Settings,
                                                                   dict[str, str]]]:
    """A city copy with a tax record to correct and revoke, a key and a token to revoke."""
    with copy_of("city", backend, tmp_path) as settings:
        monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "reports"))
        app = create_app(settings)
        client = app.test_client()
        made = client.post("/api/records", json=record(0),
                           headers=bearer(issue(settings, "tax")))
        assert made.status_code == 201
        keys = client.get("/api/keys").get_json()["keys"]
        kid = next(k["kid"] for k in keys if k["authority"] == "power")
        spare = issue(settings, "auditor:离任审计员")
        case = {"record": made.get_json()["record_ids"][0], "kid": kid,
                "token": spare.split(".")[0].removeprefix("clt_")}
        yield app, settings, case
        app.extensions["credit_door"].close()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_against_every_endpoint(matrix_city: tuple[Flask, Settings, dict[str, str]],
                                           role: str) -> None:
    app, settings, case = matrix_city
    client = app.test_client()
    headers = {} if role == "public" else bearer(issue(settings, PRINCIPALS[role]))
    for command, method, path, payload in endpoints(case):
        allowed = role in COMMANDS[command].roles
        if command == "extract.issue" and role == "public":
            allowed = True  # the public's own door: extract.public, for a wholly public file
        if command == "read.file" and role == "subject":
            allowed = True  # its own file (read.own)
        if role == "subject" and COMMANDS[command].subject_via_window:
            allowed = True  # about its own file, at the window
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
            optional_token = command in ("extract.issue", "read.known_at")
            expected = 401 if role == "public" and not optional_token else 403
            assert response.status_code == expected, (role, command, response.get_json())
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


def test_the_platform_and_the_office_administer_over_http(client: FlaskClient,
                                                          city: Settings) -> None:
    """Keys, tokens, checkpoints and subjects over HTTP, as `credit keys|tokens|checkpoint|
    subject` do them; what they issue works at once, and the whole store verifies after."""
    platform = bearer(issue(city, "platform"))
    office = bearer(issue(city, "credit-office"))
    registered = client.post("/api/keys", json={
        "authority": "grain", "name_zh": "临安区粮食局", "name_en": "Lin'an grain bureau"},
        headers=platform)
    assert registered.status_code == 201, registered.get_json()
    kid = registered.get_json()["kid"]
    is_problem(client.post("/api/keys", json={
        "authority": "grain", "name_zh": "再", "name_en": "again"}, headers=platform), 409)
    issued = client.post("/api/tokens", json={"principal": "grain", "note": "接入"},
                         headers=office)
    assert issued.status_code == 201 and issued.get_json()["role"] == "department"
    grain = bearer(issued.get_json()["bearer"])
    assert issued.get_json()["bearer"].split(".")[1] not in json.dumps(
        client.get("/api/tokens", headers=office).get_json())  # listed, never its secret
    subject = new_subject()
    made = client.post("/api/subjects", json={"subject": subject, "name": "临安粮油有限公司"},
                       headers=grain)
    assert made.status_code == 201, made.get_json()
    is_problem(client.post("/api/subjects", json={"subject": subject, "name": "再"},
                           headers=grain), 409)
    is_problem(client.post("/api/subjects", json={"subject": "uscc:91330185MA2B0T5Q90",
                                                  "name": "错"}, headers=grain), 422)
    renamed = client.post(f"/api/subjects/{subject}/name", json={
        "name": "临安新粮油有限公司", "reason": "变更登记"}, headers=grain)
    assert renamed.status_code == 201, renamed.get_json()
    state = client.get(f"/api/subjects/{subject}").get_json()
    assert state["name"] == "临安新粮油有限公司", state
    rotated = client.post("/api/keys/rotation", json={"authority": "grain"}, headers=platform)
    assert rotated.status_code == 201 and rotated.get_json()["kid"] != kid
    renamed = client.post(f"/api/subjects/{subject}/name", json={
        "name": "临安粮油有限公司", "reason": "恢复原名"}, headers=grain)
    assert renamed.status_code == 201  # signed with the new key
    keys = {k["kid"]: k for k in client.get("/api/keys").get_json()["keys"]}
    assert keys[kid]["status"] == "retired"
    assert keys[rotated.get_json()["kid"]]["status"] == "active"
    is_problem(client.post("/api/keys/nobody-2026-1/revocation", json={"reason": "x"},
                           headers=platform), 404)
    revoked = client.post(f"/api/keys/{kid}/revocation", json={"reason": "旧钥作废"},
                          headers=platform)
    assert revoked.status_code == 201, revoked.get_json()
    checkpoint = client.post("/api/checkpoints", headers=platform)
    assert checkpoint.status_code == 201, checkpoint.get_json()
    assert checkpoint.get_json()["tree_size"] == events(city)
    assert client.get("/api/checkpoints").get_json()["checkpoints"][-1]["note"] == \
        checkpoint.get_json()["note"]
    token_id = issued.get_json()["token_id"]
    gone = client.post(f"/api/tokens/{token_id}/revocation", json={"reason": "停用"},
                       headers=office)
    assert gone.status_code == 201
    is_problem(client.post(f"/api/subjects/{subject}/name", json={
        "name": "x", "reason": "y"}, headers=grain), 401)
    Credit(city.database_url, city.keys_dir)("verify")


def test_in_worker_mode_a_write_leaves_the_read_models_to_the_worker(
        city: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CREDIT_PROJECTIONS=worker: the API writes and answers; `credit project` (the worker)
    brings the read models up, not the request."""
    monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "reports"))
    app = create_app(replace(city, projections="worker"))
    try:
        token = bearer(issue(city, "tax"))
        client = app.test_client()
        ledger = CreditLedger(read_only(city))
        try:
            ProjectionRunner(ledger).catch_up()
            made = client.post("/api/records", json=record(50), headers=token)
            assert made.status_code == 201, made.get_json()
            status = {row["name"]: row["behind"] for row in ProjectionRunner(ledger).status()}
            assert status["subjects"] > 0  # the request did not catch up
            ProjectionRunner(ledger).catch_up()
            status = {row["name"]: row["behind"] for row in ProjectionRunner(ledger).status()}
            assert status["subjects"] == 0
        finally:
            ledger.close()
    finally:
        app.extensions["credit_door"].close()
