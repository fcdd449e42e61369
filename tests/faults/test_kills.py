"""Processes killed mid-work: an import killed with SIGKILL at a random moment leaves all of its
file or none of it, the ledger verifies, and the read models catch up exactly once; a rebuild
killed half way leaves no worker process behind and the next rebuild starts afresh; `credit
project --follow` stops cleanly on SIGTERM. SQLite and PostgreSQL, as real processes.

The moments are random (``CREDIT_FAULT_SEED`` repeats a run; a failure names its seed)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.e2e.test_cli import ROOT, Credit

ROWS = 1500
SEED = int(os.environ.get("CREDIT_FAULT_SEED") or random.SystemRandom().randrange(10**6))


def import_file(tmp_path: Path, rows: int = ROWS) -> Path:
    path = tmp_path / "tax.jsonl"
    path.write_text("".join(json.dumps({
        "subject": "uscc:91350100M000100Y43", "subject_name": "测试公司",
        "item_code": "TAX-PENALTY", "decision_number": f"临税罚〔2026〕{n}号",
        "decision_date": "2026-05-01", "summary": "逾期申报"}, ensure_ascii=False) + "\n"
        for n in range(rows)), encoding="utf-8")
    return path


def start(credit: Credit, *args: str, python: tuple[str, ...] = ("-m", "cli")
          ) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    return subprocess.Popen([sys.executable, *python, *args], cwd=ROOT,
                            env={**env, **credit.config}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_once_running(credit: Credit, process: subprocess.Popen[str], processes: int,
                      pause: float = 0.0) -> None:
    """SIGKILL ``process`` once this test's processes number ``processes`` (and ``pause`` more
    seconds), or when waiting for them fails."""
    try:
        deadline = time.monotonic() + 60
        while len(ours(credit)) < processes:
            assert process.poll() is None and time.monotonic() < deadline, "they did not start"
            time.sleep(0.02)
        time.sleep(pause)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)


def assert_none_left(credit: Credit, killed: str) -> None:
    deadline = time.monotonic() + 20
    while ours(credit) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ours(credit), f"processes left running after {killed} was killed: {ours(credit)}"


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_an_import_killed_at_any_point_is_all_or_nothing(database_url: str, tmp_path: Path,
                                                        attempt: int) -> None:
    # from before the file is read to after the commit (an import of this file takes 1-3 s)
    delay = random.Random(SEED * 10 + attempt).uniform(0.2, 3.0)
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    path = import_file(tmp_path)
    before = credit.events()
    process = start(credit, "import", str(path), "--as", "tax")
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    after = credit.events()
    # rows + the new subject, or nothing
    assert after in (before, before + ROWS + 1), f"killed at {delay:.2f}s (seed {SEED}): " \
        f"{after - before} events written"
    assert credit("verify").returncode == 0
    if after == before:  # nothing of it was written: the file imports whole on a second try
        credit("import", str(path), "--as", "tax")
        assert credit.events() == before + ROWS + 1
    credit("project")
    audited = credit("verify", "--projections")
    assert "all equal" in audited.stdout
    status = json.loads(credit("project", "--status", "--json").stdout)
    assert all(p["behind"] == 0 for p in status["projections"]) and status["faults"] == []


def test_an_import_killed_while_signing_in_its_process_leaves_no_process(
        database_url: str, tmp_path: Path) -> None:
    """The import's signing process holds the authorities' keys open: it must not outlive a
    killed import (a pool's worker whose parent is killed waits for work for ever)."""
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    path = import_file(tmp_path, rows=6000)
    process = start(credit, "import", str(path), "--as", "tax")
    # the command, the signing process, its resource tracker
    kill_once_running(credit, process, 3, random.Random(SEED).uniform(0.0, 0.5))
    assert_none_left(credit, "the import")
    assert credit("verify").returncode == 0


VERIFY_AGAIN_AND_AGAIN = """
import sys
from sqlalchemy import create_engine
from ledger import tables
from ledger.application import EVENTS_TABLE
from ledger.verify import LedgerVerifier
engine = create_engine(sys.argv[1])
while True:  # checkers started for each pass: killed, some are always running
    LedgerVerifier(engine, tables.events_table(EVENTS_TABLE), processes=True, workers=2).run()
"""


def test_a_verify_killed_while_its_checkers_run_leaves_no_process(
        database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    process = start(credit, database_url, python=("-c", VERIFY_AGAIN_AND_AGAIN))
    # the verifier, a checker (a small store: one chunk), their resource tracker
    kill_once_running(credit, process, 3)
    assert_none_left(credit, "verify")


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


def test_a_rebuild_killed_half_way_leaves_no_worker_and_the_next_starts_afresh(
        database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("demo", "--subjects", "30")
    live = generation_tables(database_url)
    process = start(credit, "rebuild", "subjects", "--workers", "2")
    # the command and its two workers, all begun
    kill_once_running(credit, process, 3, random.Random(SEED).uniform(0.0, 1.0))
    assert_none_left(credit, "the rebuild")
    assert generation_tables(database_url) - live, "killed before it began: nothing tested"
    # the half-built generation is dropped and built again (its rows would collide if kept)
    credit("rebuild", "subjects", "--workers", "2")
    assert len(generation_tables(database_url)) == len(live)  # one generation, as before
    assert "all equal" in credit("verify", "--projections").stdout


def ours(credit: Credit) -> list[int]:
    """The live processes started with this test's configuration (the command, its workers)."""
    marker = f"CREDIT_KEYS_DIR={credit.config['CREDIT_KEYS_DIR']}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile
            continue
        if marker in environment and state not in ("Z", "X"):  # a zombie is dead
            found.append(int(entry.name))
    return found


def generation_tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {t for t in inspect(engine).get_table_names() if "_g" in t}
    finally:
        engine.dispose()
