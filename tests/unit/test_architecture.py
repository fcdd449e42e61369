"""The layout is the architecture: imports point one way, and offline code stays light."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["domain", "keys", "ledger", "projections", "web", "cli"]
# What each package may import of ours (DESIGN.md: domain <- keys, ledger <- projections <- web, cli)
ALLOWED = {
    "domain": {"domain"},
    "keys": {"keys", "domain"},
    "ledger": {"ledger", "keys", "domain"},
    "projections": {"projections", "ledger", "keys", "domain"},
    "web": {"web", "projections", "ledger", "keys", "domain"},
    "cli": set(PACKAGES),
}
# Modules an offline verifier runs: the standard library and cryptography, nothing else.
STANDALONE = ["keys/registry.py", "keys/signer.py", "ledger/envelope.py", "ledger/merkle.py",
              "ledger/checkpoint.py", "ledger/registry_events.py", "ledger/registry_replay.py",
              "ledger/verify_checks.py", "domain/state.py", "domain/grading.py",
              "domain/policies.py", "domain/periods.py", "domain/calendar.py",
              "domain/identifiers.py"]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in PACKAGES:  # "from ledger import envelope" imports ledger.envelope
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_inward(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if top in PACKAGES:
                assert top in ALLOWED[package], f"{path.relative_to(ROOT)} imports {name}"


def test_the_domain_does_no_io_and_uses_only_eventsourcing_domain() -> None:
    for path in (ROOT / "domain").rglob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "domain" or name in (
                "eventsourcing.domain", "eventsourcing.utils"), f"{path.name} imports {name}"
            assert top not in ("sqlalchemy", "flask", "cryptography", "os", "pathlib", "socket")


@pytest.mark.parametrize("module", STANDALONE)
def test_offline_verification_code_needs_only_the_standard_library_and_cryptography(
        module: str) -> None:
    for name in imports(ROOT / module):
        top = name.split(".")[0]
        ours = name in {m.removesuffix(".py").replace("/", ".") for m in STANDALONE}
        assert top in sys.stdlib_module_names or top == "cryptography" or ours, (
            f"{module} imports {name}")
