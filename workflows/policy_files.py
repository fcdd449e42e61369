"""The policy versions kept in the repository (``domain/policies/*.json``)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from domain.policies import PolicyError, parse_policy


def bundled_policies() -> list[dict[str, Any]]:
    """Every bundled policy document, by kind (calendar and measures first) and date."""
    folder = resources.files("domain") / "policies"
    documents = [json.loads(entry.read_text(encoding="utf-8"))
                 for entry in folder.iterdir() if entry.name.endswith(".json")]
    order = {"calendar": 0, "measures": 1, "catalogue": 2, "grading": 3}
    return sorted(documents, key=lambda d: (order.get(d["kind"], 9), d["effective_from"]))


def read_policy_file(path: Path) -> dict[str, Any]:
    """A policy document from a file; PolicyError names the file and what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise PolicyError(f"{path} is not JSON: {exc}") from exc
    try:
        parse_policy(document)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    return dict(document)

