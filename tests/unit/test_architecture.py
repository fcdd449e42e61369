"""The layout is the architecture: imports point one way, and the court's verifier stays light.

domain <- keys, proofs <- ledger <- workflows, projections <- web, cli
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.verifier_file import KERNEL, imported_names, third_party_imports, verifier_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["domain", "keys", "proofs", "ledger", "workflows", "projections", "web", "cli"]
# What each package may import of ours.
ALLOWED = {
    "domain": {"domain"},
    "keys": {"keys", "domain"},
    "proofs": {"proofs", "keys", "domain"},
    "ledger": {"ledger", "proofs", "keys", "domain"},
    "workflows": {"workflows", "ledger", "proofs", "keys", "domain"},
    "projections": {"projections", "ledger", "proofs", "keys", "domain"},
    # the two doors: the service layer, the read-model queries, and the domain's vocabulary
    "web": {"web", "workflows", "projections", "domain"},
    "cli": {"cli", "workflows", "projections", "domain", "web"},  # web: `credit serve` only
}


def ours(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_every_top_level_package_is_placed() -> None:
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert found == set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_inward(package: str) -> None:
    for path in ours(package):
        for name in imported_names(path):
            top = name.split(".")[0]
            if top in PACKAGES:
                assert top in ALLOWED[package], f"{path.relative_to(ROOT)} imports {name}"


def test_the_domain_does_no_io_and_uses_only_eventsourcing_domain() -> None:
    for path in ours("domain"):
        for name in imported_names(path):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "domain" or name.startswith((
                "eventsourcing.domain", "eventsourcing.utils")), f"{path.name} imports {name}"
            assert top not in ("sqlalchemy", "flask", "cryptography", "os", "pathlib", "socket")


@pytest.mark.parametrize("door", ["cli", "web"])
def test_the_doors_hold_no_sql_and_no_proof_building(door: str) -> None:
    for path in ours(door):
        for name in imported_names(path):
            assert name.split(".")[0] not in ("sqlalchemy", "psycopg2", "sqlite3", "proofs"), (
                f"{path.relative_to(ROOT)} imports {name}")


def test_the_verifier_is_the_proofs_folder_and_what_it_imports() -> None:
    files = {str(p) for p in verifier_files()}
    kernel = {str(p.relative_to(ROOT)) for p in (ROOT / KERNEL).glob("*.py")}
    assert kernel <= files
    # what the walk adds comes from the pure layers only
    assert {f.split("/")[0] for f in files} <= {"proofs", "domain", "keys"}
    for name in files - kernel:
        assert (ROOT / name).exists()


# The one exception: an RFC 3161 token (a CMS signature) is checked with rfc3161-client, and
# only when the verifier is given a TSA certificate (--tsa-cert); it is imported there, inside
# the check, so the verifier runs without it otherwise (tested below).
OPTIONAL = {"proofs/timestamps.py": {"rfc3161_client"}}


def test_the_verifier_needs_only_the_standard_library_and_cryptography() -> None:
    outside = third_party_imports()
    assert outside, "the verifier checks Ed25519 signatures: it must import cryptography"
    needed = {top for name, tops in outside.items() for top in tops - OPTIONAL.get(name, set())}
    assert needed == {"cryptography"}, outside


def test_the_verifier_runs_without_its_optional_dependency(tmp_path: Path) -> None:
    blocker = tmp_path / "rfc3161_client.py"
    blocker.write_text("raise ImportError('not installed here')\n")
    ran = subprocess.run([sys.executable, "-c", "import proofs.verify_extract as v; "
                          "v.main(['--help'])"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert ran.returncode == 0 and "--tsa-cert" in ran.stdout, ran.stderr


def test_the_architecture_document_names_every_package() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for package in PACKAGES:
        assert f"\n{package}/" in text, f"docs/ARCHITECTURE.md does not place {package}/"
