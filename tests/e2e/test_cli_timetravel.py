"""History, diff, read models and lookup through the `credit` command."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

from cli.common import parse_time
from domain.clock import CHINA_TIME, today_in_china
from domain.identifiers import mask_subject_key
from tests.e2e.test_cli import ROOT, Credit


def test_history_diff_project_rebuild_and_lookup(database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    credit("import", str(ROOT / "examples" / "labour.csv"), "--as", "labour")
    first = (ROOT / "examples" / "labour.csv").read_text().splitlines()[1].split(",")
    subject, name, decided = first[1], first[2], first[5]

    # a person's file is never public
    refused = credit("history", subject, ok=False)
    assert refused.returncode == 1 and "is a natural person" in refused.stderr
    assert subject not in refused.stderr
    # the department that keeps it reads it, stating why (logged)
    labour = ("--as", "labour", "--purpose", "核查社保缴纳")
    state = json.loads(credit("history", subject, *labour, "--json").stdout)
    assert state["subject"] == subject and state["name"] == name and state["view"] == "full"
    assert state["records"][0]["decision_date"] == decided
    text = credit("history", subject, *labour).stdout
    assert subject not in text and name not in text  # a person: number and name masked
    assert "3301**********" in text
    unstated = credit("history", subject, "--as", "labour", ok=False)
    assert unstated.returncode == 1 and "state the purpose" in unstated.stderr

    before = json.loads(credit("history", subject, "--as-of", "2026-01-01", *labour,
                               "--json").stdout)
    assert before["records"] == []
    changes = json.loads(credit("diff", subject, "--from", "2026-01-01", *labour,
                                "--json").stdout)
    assert {e["event"] for e in changes["events"]} >= {"CreditRecord.Submitted"}
    assert all(e["notification_id"] and e["kid"] for e in changes["events"])

    # embedded read models: the import above is already in them
    status = json.loads(credit("project", "--status", "--json").stdout)["projections"]
    assert all(p["behind"] == 0 for p in status)
    rebuilt = json.loads(credit("rebuild", "--json").stdout)
    assert set(rebuilt) == {"subjects", "keys", "checkpoints"}
    # the public finds no person: not by a prefix of the number, not by a wildcard
    for probe in (subject.split(":")[1][:10], "%", "_", name):
        found = json.loads(credit("lookup", probe, "--json").stdout)["subjects"]
        assert found == [], probe
    # an authorised reader finds a person by the full number only, stating why (logged)
    found = json.loads(credit("lookup", subject, *labour, "--json").stdout)["subjects"]
    assert [s["subject"] for s in found] == [mask_subject_key(subject)]
    logged = json.loads(credit("queries", "--subject", subject, "--as", "auditor:审计局",
                               "--json").stdout)["queries"]
    assert [q["command"] for q in logged] == ["read.file"] * 5
    assert {q["reader"] for q in logged} == {"labour"}
    assert {q["purpose"] for q in logged} == {"核查社保缴纳"}
    public_log = credit("queries", "--as", "public", ok=False)
    assert public_log.returncode == 1 and "may not read queries" in public_log.stderr
    assert credit("verify").returncode == 0


def test_a_bare_date_as_a_time_is_the_end_of_that_day(database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    credit("import", str(ROOT / "examples" / "tax.jsonl"), "--as", "tax")
    subject = json.loads((ROOT / "examples" / "tax.jsonl").read_text().splitlines()[0])["subject"]
    today = today_in_china()
    office = ("--as", "credit-office", "--purpose", "核对")

    def known(day: date) -> int:
        return len(json.loads(credit("history", subject, "--known-at", day.isoformat(), *office,
                                     "--json").stdout)["records"])

    # imported today: known at the end of today, not at the end of yesterday
    assert known(today) >= 1
    assert known(today - timedelta(days=1)) == 0
    assert parse_time("2024-03-01") == datetime(2024, 3, 1, 23, 59, 59, 999999,
                                                tzinfo=CHINA_TIME)


def test_history_text_labels_every_flag_and_says_when_no_grading_was_in_force(
        database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    credit("import", str(ROOT / "examples" / "tax.jsonl"), "--as", "tax")
    subject = json.loads((ROOT / "examples" / "tax.jsonl").read_text().splitlines()[0])["subject"]
    record = json.loads(credit("history", subject, "--json").stdout)["records"][0]
    number = json.loads(credit("objection", "raise", "--as", "credit-office", "--subject", subject,
                               "--record", record["id"], "--grounds", "有误",
                               "--json").stdout)["number"]
    credit("objection", "accept", number, "--as", "credit-office")
    text = credit("history", subject, "--as", "credit-office", "--purpose", "核对").stdout
    (line,) = [li for li in text.splitlines() if li.strip().startswith(number)]
    assert "status accepted" in line and "deadline " in line
    assert "False" not in text and "True" not in text
    before = credit("history", subject, "--as-of", "2015-06-01").stdout
    assert "no grading policy was in force on 2015-06-01" in before and "None" not in before


def test_the_demo_into_a_ledger_holding_something_else_fails(database_url: str,
                                                             tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("demo", "--subjects", "8", "--seed", "5")
    same = credit("demo", "--subjects", "8", "--seed", "5")
    assert same.returncode == 0 and "this demo city" in same.stdout
    other = credit("demo", "--subjects", "8", "--seed", "6", ok=False)
    assert other.returncode == 1 and "nothing written" in other.stdout
    bigger = credit("demo", "--subjects", "9", "--seed", "5", ok=False)
    assert bigger.returncode == 1
