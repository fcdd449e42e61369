"""The one `credit` command. It parses, wires and prints; the work is done in the packages."""

from __future__ import annotations

import gc
import os

from cli import (  # noqa: F401 - they add their commands
    admin,
    extracts,
    importer,
    mirror,
    serve,
    timetravel,
    tokens,
    witness,
    workflows,
)
from cli.common import credit


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    # Everything imported so far lives for the whole run: keep it out of the collector's scans,
    # which otherwise cost a command reading thousands of events a third of its time.
    gc.freeze()
    credit(prog_name="credit")
