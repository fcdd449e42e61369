"""An extract issued by an earlier version still verifies, and still fails when altered."""

from __future__ import annotations

import json
from pathlib import Path

from keys.signer import public_key_from_pem
from proofs.verify_extract import run

FOLDER = Path(__file__).parent.parent / "data" / "extracts"
EXTRACT = FOLDER / "extract-scenario-2021.json"
KEY = public_key_from_pem((FOLDER / "platform-2020-1.pem").read_bytes())


def test_an_extract_issued_before_the_layout_change_verifies() -> None:
    valid, summary, text = run(EXTRACT, KEY)
    assert valid, text
    assert summary["number"] == "LA-20210901-52-812F7E94"
    assert summary["subject"] == "uscc:91350100M000100Y43"
    assert summary["events"] == {"subject": 24, "registry": 7, "policies": 8}
    assert (summary["grade"]["grade"], summary["grade"]["points"]) == ("C", 40)


def test_the_frozen_extract_altered_fails_its_signature(tmp_path: Path) -> None:
    document = json.loads(EXTRACT.read_text())
    document["signature"] = document["signature"][::-1]
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document))
    valid, result, _ = run(altered, KEY)
    assert not valid
    assert (result["check"], result["kind"]) == ("extract-signature", "inauthentic")
