"""Extracts as a court receives them: issued by `credit extract`, checked by `credit verify-extract`,
by `python -m proofs.verify_extract`, by the one-file verifier with nothing else importable, and by
the steps of docs/VERIFYING.md (jwcrypto, openssl) run as written."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.signer import Signer, public_key_from_pem, verify
from keys.store import KeyStore
from proofs import merkle
from proofs.checkpoint import make_checkpoint, parse_checkpoint
from tests.conftest import PASSPHRASE
from tests.e2e.test_cli import ROOT, Credit
from workflows.verifier_file import verifier_files

DOCS = ROOT / "docs" / "VERIFYING.md"


@pytest.fixture
def issued(database_url: str, tmp_path: Path) -> tuple[Credit, str, Path, Path]:
    """A ledger with the tax examples imported, one subject's extract and the platform key."""
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    credit("import", str(ROOT / "examples" / "tax.jsonl"), "--as", "tax")
    subject = json.loads((ROOT / "examples" / "tax.jsonl").read_text().splitlines()[0])["subject"]
    out = credit("extract", subject, "-o", str(tmp_path / "extract.json"), "--as",
                 "court:临安区人民法院", "--purpose", "（2026）浙0112民初1号 调取信用记录")
    assert out.stdout.startswith("extract LA-")
    pem = credit("keys", "export", "platform").stdout
    (tmp_path / "platform.pem").write_text(pem)
    return credit, subject, tmp_path / "extract.json", tmp_path / "platform.pem"


def test_issue_export_and_verify_through_the_cli(issued: tuple[Credit, str, Path, Path],
                                                 tmp_path: Path) -> None:
    credit, subject, extract, pem = issued
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    [platform_pub] = (tmp_path / "keys").glob("platform-*.pub")
    assert public_key_from_pem(pem.read_bytes()) == public_key_from_pem(platform_pub.read_bytes())
    text = credit("verify-extract", str(extract), "--trust", str(pem)).stdout
    assert text.startswith("VALID  credit extract LA-")
    assert subject in text and "grade" in text
    result = json.loads(credit("verify-extract", str(extract), "--trust", str(pem),
                               "--json").stdout)
    assert result["valid"] is True and result["subject"] == subject
    assert result["events"]["subject"] >= 2

    document = json.loads(extract.read_text())
    payload = bytearray(document["payload"].encode())
    payload[100] = ord("A") if payload[100] != ord("A") else ord("B")
    document["payload"] = payload.decode()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    failed = credit("verify-extract", str(broken), "--trust", str(pem), ok=False)
    assert failed.returncode == 1
    assert failed.stdout.startswith("INVALID  extract-signature: ")
    as_json = json.loads(credit("verify-extract", str(broken), "--trust", str(pem), "--json",
                                ok=False).stdout)
    assert as_json == {"valid": False, "check": "extract-signature", "kind": "inauthentic",
                       "reason": as_json["reason"]}

    missing = credit("verify-extract", str(extract), "--trust", str(tmp_path / "nope.pem"),
                     ok=False)
    assert missing.returncode == 1 and "cannot read the trusted key" in missing.stderr
    check_an_extract_of_a_past_day(issued, tmp_path)
    check_the_module_runs_on_its_own(issued)


def check_an_extract_of_a_past_day(issued: tuple[Credit, str, Path, Path],
                                   tmp_path: Path) -> None:
    credit, subject, _, _ = issued
    old = tmp_path / "old.json"
    office = ("--as", "credit-office", "--purpose", "核查")
    # the public takes the report of an enterprise whose whole file is public (this one)
    public = credit("extract", subject, "-o", str(old))
    assert public.stdout.startswith("extract LA-")
    old.unlink()
    person = credit("extract", "rid:11010519491231002X", "-o", str(old), ok=False)
    assert person.returncode == 1 and "never public" in person.stderr
    assert not old.exists()
    # before the ledger existed there is nothing to state: refused, not "no records"
    before = credit("extract", subject, "--as-of", "2016-01-01", "-o", str(old), *office,
                    ok=False)
    assert before.returncode == 1 and "the ledger held nothing" in before.stderr
    assert "2016-01-01T15:59:59.999999+00:00" in before.stderr  # the end of that day in China
    assert not old.exists()
    future = credit("extract", subject, "--as-of", "2999-01-01", "-o", str(old), *office,
                    ok=False)
    assert future.returncode == 1 and "lies in the future" in future.stderr


def check_the_module_runs_on_its_own(issued: tuple[Credit, str, Path, Path]) -> None:
    _, subject, extract, pem = issued
    result = subprocess.run([sys.executable, "-m", "proofs.verify_extract", str(extract),
                             "--trust", str(pem)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("VALID") and subject in result.stdout


# Run with every import that is not the standard library, cryptography or the packed verifier
# refused: the one file must be all a court needs besides `pip install cryptography`.
BLOCKER = """
import importlib.abc, runpy, sys
ALLOWED = set(sys.stdlib_module_names) | {"cryptography", "_cffi_backend", "cffi",
                                          "domain", "keys", "proofs", "__main__"}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in ALLOWED:
            raise ImportError(f"the offline verifier imported {name}")
        return None
sys.meta_path.insert(0, Blocker())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_the_one_file_verifier_needs_only_cryptography(issued: tuple[Credit, str, Path, Path],
                                                       tmp_path: Path) -> None:
    credit, _, extract, pem = issued
    elsewhere = tmp_path / "court"
    elsewhere.mkdir()
    pyz = elsewhere / "credit-verify.pyz"
    credit("verifier", "-o", str(pyz))
    with zipfile.ZipFile(pyz) as packed:
        packed_files = {n for n in packed.namelist() if n.endswith(".py")} - {"__main__.py"}
    assert packed_files == {str(p) for p in verifier_files()}
    assert packed_files >= {str(p.relative_to(ROOT)) for p in (ROOT / "proofs").glob("*.py")}
    listed = credit("verifier", "--list").stdout.split()
    assert set(listed) == packed_files
    (elsewhere / "block.py").write_text(BLOCKER)
    for target, code in ((extract, 0), (tmp_path / "tampered.json", 1)):
        if code:
            document = json.loads(extract.read_text())
            document["signature"] = document["signature"][::-1]
            target.write_text(json.dumps(document))
        result = subprocess.run([sys.executable, "-I", "block.py", str(pyz), str(target),
                                 "--trust", str(pem)], cwd=elsewhere, capture_output=True,
                                text=True)
        assert result.returncode == code, result.stderr
        assert result.stdout.startswith("VALID" if code == 0 else "INVALID  extract-signature")
        assert "ImportError" not in result.stderr


def _tested_block(marker: str) -> str:
    text = DOCS.read_text()
    match = re.search(rf"<!-- tested: {marker} -->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"docs/VERIFYING.md has no block marked {marker}"
    return match.group(1)


def check_verifying_md_jwcrypto_step(issued: tuple[Credit, str, Path, Path],
                                    tmp_path: Path) -> None:
    _, subject, extract, _pem = issued
    (tmp_path / "step2.py").write_text(_tested_block("jwcrypto"))
    result = subprocess.run([sys.executable, "step2.py"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("signature OK: LA-") and subject in result.stdout
    document = json.loads(extract.read_text())
    document["payload"] = document["payload"][:-4] + ("AAAA" if document["payload"][-4:] != "AAAA"
                                                      else "BBBB")
    extract.write_text(json.dumps(document))
    result = subprocess.run([sys.executable, "step2.py"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode != 0 and "InvalidJWSSignature" in result.stderr


def test_verifying_md_steps_work_as_written(issued: tuple[Credit, str, Path, Path],
                                           tmp_path: Path) -> None:
    result = subprocess.run(["sh", "-e", "-c", _tested_block("openssl")], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout
    lines = (tmp_path / "body.txt").read_text().splitlines()
    assert len(lines) == 5 and lines[4].startswith("chains ")
    check_verifying_md_jwcrypto_step(issued, tmp_path)  # last: it damages the extract


def test_checkpoints_come_with_consistency_proofs(issued: tuple[Credit, str, Path, Path],
                                                  tmp_path: Path) -> None:
    credit, _, _, pem = issued
    key = public_key_from_pem(pem.read_bytes())
    listed = json.loads(credit("checkpoints", "--since", "1", "--json").stdout)["checkpoints"]
    assert [c["seq"] for c in listed] == list(range(1, len(listed) + 1))
    assert len(listed) > 10
    previous = None
    for item in listed:
        checkpoint = parse_checkpoint(item["note"])
        verify(key, checkpoint.signature, checkpoint.body.encode())
        if previous is not None:
            proof = [bytes.fromhex(h) for h in item["consistency"]["proof"]]
            assert item["consistency"]["from_seq"] == item["seq"] - 1
            if previous.tree_size:
                merkle.verify_consistency(previous.tree_size, checkpoint.tree_size,
                                          previous.root_hash, checkpoint.root_hash, proof)
            if previous.tree_size and previous.tree_size < checkpoint.tree_size:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(previous.tree_size, checkpoint.tree_size,
                                              bytes(32), checkpoint.root_hash, proof)
        previous = checkpoint
    latest = credit("checkpoints").stdout
    assert latest.count("# checkpoint ") == 10
    assert base64.b64encode(previous.root_hash).decode() in latest if previous else False
    gone = credit("checkpoints", "--since", "100000", ok=False)
    assert gone.returncode == 1 and "there is no checkpoint 100000" in gone.stderr

    check_a_listing_offline(credit, pem, tmp_path)


def check_a_listing_offline(credit: Credit, pem: Path, tmp_path: Path) -> None:
    """`python -m proofs.verify_extract --checkpoints`: signatures, proofs, the kept note."""
    listing = tmp_path / "checkpoints.json"
    listing.write_text(credit("checkpoints", "--since", "3", "--json").stdout)
    items = json.loads(listing.read_text())["checkpoints"]
    kept = tmp_path / "kept.txt"
    kept.write_text(items[0]["note"])

    def offline(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "proofs.verify_extract", "--checkpoints",
                               str(path), "--trust", str(pem), *extra], cwd=ROOT,
                              capture_output=True, text=True)

    good = offline(listing, "--kept", str(kept))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("VALID") and "the kept checkpoint is among them" in good.stdout

    original = parse_checkpoint(items[0]["note"])

    def kept_with_another_root(signer: Signer) -> subprocess.CompletedProcess[str]:
        note = make_checkpoint(original.origin, original.tree_size, bytes(32),
                               original.issued_at, original.chain_root, signer.kid,
                               signer.public_key, signer.sign).note
        kept.write_text(note)
        return offline(listing, "--kept", str(kept))

    bad = kept_with_another_root(KeyStore(tmp_path / "keys", PASSPHRASE).signer(original.key_name))
    assert bad.returncode == 1 and bad.stdout.startswith("INVALID  consistency: ")
    assert "the log was rewritten" in bad.stdout
    # A kept note nobody trusted signed proves nothing, and cannot make an honest log look
    # rewritten.
    bad = kept_with_another_root(Signer(original.key_name, Ed25519PrivateKey.generate()))
    assert bad.returncode == 1 and bad.stdout.startswith("INVALID  checkpoint: the kept")

    grown = [i for i, item in enumerate(items) if item.get("consistency", {}).get("proof")]
    assert grown, "the listing has no checkpoint that grew the log"
    broken = json.loads(listing.read_text())
    proof = broken["checkpoints"][grown[0]]["consistency"]["proof"]
    proof[0] = "00" * 32
    listing.write_text(json.dumps(broken))
    bad = offline(listing)
    assert bad.returncode == 1 and bad.stdout.startswith("INVALID  consistency: ")
