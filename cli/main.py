"""The one `credit` command. It parses, wires and prints; the work is done in the packages."""

from __future__ import annotations

import os

from cli import admin, importer, workflows  # noqa: F401 - they add their commands to the group
from cli.common import credit


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    credit(prog_name="credit")
