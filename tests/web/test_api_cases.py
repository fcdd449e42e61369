"""Objections, repair, lists and commitments over HTTP, on SQLite and PostgreSQL: a subject acts
on its own file through the window (the credit office's key signs), never on another's; the
office accepts and rules; a listing is removed; a commitment is made and settled."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from ledger.application import CreditLedger
from ledger.settings import Settings
from tests.conftest import BARRED, ENTERPRISE
from tests.web.test_api import bearer, events, is_problem, issue
from workflows.session import read_only


def facts(settings: Settings, stream: str) -> list[Any]:
    ledger = CreditLedger(read_only(settings))
    try:
        return list(ledger.stream_facts(stream))
    finally:
        ledger.close()


def own_record(client: FlaskClient) -> str:
    state = client.get(f"/api/subjects/{ENTERPRISE.key}").get_json()
    return str(state["records"][0]["id"])


def test_a_subject_objects_through_the_window_and_the_office_rules(client: FlaskClient,
                                                                   city: Settings) -> None:
    subject = bearer(issue(city, f"subject:{ENTERPRISE.key}"))
    office = bearer(issue(city, "credit-office"))
    record = own_record(client)
    other = bearer(issue(city, f"subject:{BARRED.key}"))
    before = events(city)
    is_problem(client.post("/api/objections", json={
        "subject": ENTERPRISE.key, "record": record, "grounds": "不是我"}, headers=other), 403)
    is_problem(client.post("/api/objections", json={
        "subject": ENTERPRISE.key, "record": record, "grounds": "x"},
        headers=bearer(issue(city, "tax"))), 403)  # a department does not receive objections
    assert events(city) == before + 1  # only the tax token issued
    raised = client.post("/api/objections", json={
        "subject": ENTERPRISE.key, "record": record, "grounds": "处罚金额有误"}, headers=subject)
    assert raised.status_code == 201, raised.get_json()
    number = raised.get_json()["number"]
    (made,) = [f for f in facts(city, "Objection") if f.kind == "Objection.Raised"
               and f.data["number"] == number]
    assert made.actor == "credit-office"  # recorded at the window, by the office's key
    is_problem(client.post(f"/api/objections/{number}/acceptance", json={}, headers=subject),
               403)
    accepted = client.post(f"/api/objections/{number}/acceptance", json={}, headers=office)
    assert accepted.status_code == 201 and accepted.get_json()["deadline"]
    marked = client.get(f"/api/subjects/{ENTERPRISE.key}",
                        query_string={"purpose": "复核"}, headers=office).get_json()
    assert [r["under_objection"] for r in marked["records"] if r["id"] == record] == [True]
    ruled = client.post(f"/api/objections/{number}/ruling", json={
        "outcome": "correct", "reasoning": "金额核实有误", "changes": {"summary": "更正后"}},
        headers=office)
    assert ruled.status_code == 201, ruled.get_json()
    review = client.post(f"/api/objections/{number}/review",
                         json={"grounds": "仍有异议"}, headers=subject)
    assert review.status_code == 201, review.get_json()
    is_problem(client.post(f"/api/objections/{number}/review", json={
        "result": "upheld", "reasoning": "x"}, headers=subject), 403)


def test_repair_listing_and_commitment_over_http(client: FlaskClient, city: Settings) -> None:
    office = bearer(issue(city, "credit-office"))
    barred = bearer(issue(city, f"subject:{BARRED.key}"))
    state = client.get(f"/api/subjects/{BARRED.key}").get_json()
    (listing,) = [x for x in state["listings"] if x["status"] == "active"]
    record = state["records"][0]["id"]
    applied = client.post("/api/repairs", json={
        "record": record, "evidence": ["完税证明"], "commitment": "依法纳税"}, headers=barred)
    assert applied.status_code == 201, applied.get_json()
    checks = {c["rule"]: c["passed"] for c in applied.get_json()["checks"]}
    assert checks["not_black_listed"] is False and checks["evidence"] is True  # explained
    (received,) = [f for f in facts(city, "RepairApplication")
                   if f.data.get("number") == applied.get_json()["number"]]
    assert received.actor == "credit-office"  # at the window
    removed = client.post(f"/api/listings/{listing['number']}/removal",
                          json={"reason": "已补缴"}, headers=office)
    assert removed.status_code == 201, removed.get_json()
    after = client.get(f"/api/subjects/{BARRED.key}").get_json()
    assert all(x["status"] != "active" for x in after["listings"])
    made = client.post("/api/commitments", json={
        "subject": BARRED.key, "text": "按期纳税", "due": "2027-06-30"}, headers=barred)
    assert made.status_code == 201, made.get_json()
    settled = client.post(f"/api/commitments/{made.get_json()['number']}/settlement",
                          json={"kept": True, "note": "按期"}, headers=office)
    assert settled.status_code == 201, settled.get_json()
    is_problem(client.post("/api/commitments", json={
        "subject": ENTERPRISE.key, "text": "x"}, headers=barred), 403)  # not its own
