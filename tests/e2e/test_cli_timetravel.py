"""History, diff, read models and lookup through the `credit` command."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import ROOT, Credit


def test_history_diff_project_rebuild_and_lookup(database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    credit("import", str(ROOT / "examples" / "labour.csv"), "--as", "labour")
    first = (ROOT / "examples" / "labour.csv").read_text().splitlines()[1].split(",")
    subject, name, decided = first[1], first[2], first[5]

    state = json.loads(credit("history", subject, "--json").stdout)
    assert state["subject"] == subject and state["name"] == name
    assert state["records"][0]["decision_date"] == decided
    text = credit("history", subject).stdout
    assert subject not in text and name not in text  # a person: number and name masked
    assert "3301**********" in text

    before = json.loads(credit("history", subject, "--as-of", "2026-01-01", "--json").stdout)
    assert before["records"] == []
    changes = json.loads(credit("diff", subject, "--from", "2026-01-01", "--json").stdout)
    assert {e["event"] for e in changes["events"]} >= {"CreditRecord.Submitted"}
    assert all(e["notification_id"] and e["kid"] for e in changes["events"])

    # embedded read models: the import above is already in them
    status = json.loads(credit("project", "--status", "--json").stdout)["projections"]
    assert all(p["behind"] == 0 for p in status)
    rebuilt = json.loads(credit("rebuild", "--json").stdout)
    assert set(rebuilt) == {"subjects", "keys", "checkpoints"}
    found = json.loads(credit("lookup", subject.split(":")[1][:10], "--json").stdout)["subjects"]
    assert found and all("*" in s["subject"] for s in found)
