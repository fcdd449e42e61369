"""The court's verifier is one file a court can identify: the same sources, the same bytes."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from workflows.verifier_file import pack_verifier, published_digest, verifier_bytes

ROOT = Path(__file__).resolve().parents[2]


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pyz", tmp_path / "b.pyz"
    digest = pack_verifier(first)
    (tmp_path / "sources-touched").write_text("x")  # the time of the build does not matter
    assert pack_verifier(second) == digest
    assert first.read_bytes() == second.read_bytes()
    assert hashlib.sha256(first.read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_published_digest_is_the_one_this_checkout_builds() -> None:
    built = hashlib.sha256(verifier_bytes()).hexdigest()
    assert published_digest(ROOT / "docs" / "VERIFYING.md") == built, (
        "docs/VERIFYING.md names another verifier: run `make verifier` (the release step)")
