"""The credit workflows through the `credit` command: import, objection, repair, lists,
commitments, policies; JSON output; refusals as one sentence with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import ROOT, Credit


def out(credit: Credit, *args: str) -> dict[str, object]:
    return dict(json.loads(credit(*args, "--json").stdout))


def test_a_department_imports_and_the_office_runs_the_workflows(database_url: str,
                                                                 tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    imported = out(credit, "import", str(ROOT / "examples" / "tax.jsonl"), "--as", "tax")
    assert (imported["submitted"], imported["corrected"]) == (6, 1)
    record = str(imported["record_ids"][0])  # type: ignore[index]
    subject = json.loads((ROOT / "examples" / "tax.jsonl").read_text().splitlines()[0])["subject"]

    raised = out(credit, "objection", "raise", "--as", "credit-office", "--subject", subject,
                 "--record", record, "--grounds", "已缴清税款")
    number = str(raised["number"])
    accepted = out(credit, "objection", "accept", number, "--as", "credit-office")
    assert accepted["status"] == "accepted" and accepted["deadline"]
    ruled = out(credit, "objection", "rule", number, "--as", "credit-office", "--outcome",
                "correct", "--reasoning", "核实", "--set", "summary=已缴清(更正)")
    assert ruled["outcome"] == "correct"

    refused = credit("objection", "rule", number, "--as", "tax", "--outcome", "reject",
                     "--reasoning", "x", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: 'tax' (department) may not objection rule: only credit_office")

    repair = out(credit, "repair", "apply", "--as", "credit-office", "--record", record,
                 "--evidence", "已缴纳", "--commitment", "守信经营")
    assert {c["rule"] for c in repair["checks"]} >= {"minimum_period", "commitment"}  # type: ignore[union-attr]
    decided = credit("repair", "decide", str(repair["number"]), "--as", "credit-office",
                     "--refuse", "--reason", "材料不全")
    assert "refused" in decided.stdout

    commitment = out(credit, "commitment", "make", "--as", "credit-office", "--subject", subject,
                     "--text", "按期整改")
    settled = out(credit, "commitment", "settle", str(commitment["number"]), "--as", "tax",
                  "--broken", "--note", "未整改")
    assert settled["kept"] is False

    grading = json.loads((ROOT / "domain" / "policies" / "grading-2023.json").read_text())
    grading.update(version="2026.2", effective_from="2026-12-01", base_points=95)
    (tmp_path / "grading.json").write_text(json.dumps(grading, ensure_ascii=False))
    published = out(credit, "policy", "publish", str(tmp_path / "grading.json"), "--as",
                    "credit-office")
    assert published == {"kind": "grading", "version": "2026.2", "effective_from": "2026-12-01"}
    assert any(p["version"] == "2026.2"
               for p in out(credit, "policy", "list")["policies"])  # type: ignore[union-attr]
    assert credit("verify").returncode == 0


def test_a_bad_import_lists_every_bad_line_and_writes_nothing(database_url: str,
                                                             tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    before = credit.events()
    bad = tmp_path / "tax.jsonl"
    good = (ROOT / "examples" / "tax.jsonl").read_text().splitlines()
    bad.write_text("\n".join([good[0], "{broken", good[1].replace("TAX-", "MKT-")]) + "\n")
    result = credit("import", str(bad), "--as", "tax", ok=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: {bad}: 2 bad row(s); nothing was written"
    assert lines[1].startswith(f"{bad}:2: not JSON")
    assert lines[2].startswith(f"{bad}:3: item MKT-")
    assert credit.events() == before


def test_a_malformed_policy_file_is_named(database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    policy = tmp_path / "catalogue.json"
    policy.write_text(json.dumps({"kind": "catalogue", "version": "x", "effective_from": "2027-01-01",
                                  "source": "s", "items": []}))
    result = credit("policy", "publish", str(policy), "--as", "credit-office", ok=False)
    assert result.stderr.strip() == f"error: {policy}: items is empty"
