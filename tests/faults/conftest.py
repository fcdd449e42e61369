"""The `credit` command for the fault tests (see tests/e2e/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import Credit


@pytest.fixture
def credit(database_url: str, tmp_path: Path) -> Credit:
    return Credit(database_url, tmp_path / "keys")
