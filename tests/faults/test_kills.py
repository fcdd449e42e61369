"""Processes killed mid-work: an import killed with SIGKILL leaves all of its file or none of it,
the ledger verifies, and the read models catch up exactly once; `credit project --follow` stops
cleanly on SIGTERM. SQLite and PostgreSQL, as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli import ROOT, Credit

ROWS = 1500


def import_file(tmp_path: Path) -> Path:
    path = tmp_path / "tax.jsonl"
    path.write_text("".join(json.dumps({
        "subject": "uscc:91350100M000100Y43", "subject_name": "测试公司",
        "item_code": "TAX-PENALTY", "decision_number": f"临税罚〔2026〕{n}号",
        "decision_date": "2026-05-01", "summary": "逾期申报"}, ensure_ascii=False) + "\n"
        for n in range(ROWS)), encoding="utf-8")
    return path


def start(credit: Credit, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT,
                            env={**env, **credit.config}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("delay", [0.4, 1.2])
def test_an_import_killed_at_any_point_is_all_or_nothing(database_url: str, tmp_path: Path,
                                                        delay: float) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    path = import_file(tmp_path)
    before = credit.events()
    process = start(credit, "import", str(path), "--as", "tax")
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    after = credit.events()
    assert after in (before, before + ROWS + 1), (before, after)  # rows + the new subject
    assert credit("verify").returncode == 0
    if after == before:  # nothing of it was written: the file imports whole on a second try
        credit("import", str(path), "--as", "tax")
        assert credit.events() == before + ROWS + 1
    credit("project")
    audited = credit("verify", "--projections")
    assert "all equal" in audited.stdout
    status = json.loads(credit("project", "--status", "--json").stdout)
    assert all(p["behind"] == 0 for p in status["projections"]) and status["faults"] == []


def test_follow_stops_cleanly_on_sigterm(database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    process = start(credit, "project", "--follow", "--interval", "0.2")
    assert process.stderr is not None
    assert "following" in process.stderr.readline()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped following" in err
