"""The reducer against its published test vectors (docs/REDUCER.md, tests/data/reducer/): the
events as stored and the state each (as-of, known-at) pair must give."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.state import REDUCER_VERSION, subject_state
from proofs.facts import fact_from_row

FOLDER = Path(__file__).parent.parent / "data" / "reducer"
VECTORS = json.loads((FOLDER / "backdated.json").read_text(encoding="utf-8"))
POLICIES = json.loads((FOLDER / VECTORS["policies"]).read_text(encoding="utf-8"))["events"]


def facts(items: list[dict[str, Any]]) -> list[Any]:
    return [fact_from_row(i["position"], i["notification_id"], i["originator_id"], i["version"],
                          i["topic"], base64.b64decode(i["state"])) for i in items]


def test_the_vectors_are_for_this_reducer() -> None:
    assert VECTORS["reducer"] == REDUCER_VERSION
    assert len(VECTORS["cases"]) >= 10


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"{c['as_of']}@{c['known_at']}")
def test_the_reducer_gives_each_vector_s_state(case: dict[str, Any]) -> None:
    state = subject_state(VECTORS["subject"], facts(VECTORS["events"]), facts(POLICIES),
                          date.fromisoformat(case["as_of"]),
                          datetime.fromisoformat(case["known_at"]))
    assert json.loads(json.dumps(state)) == case["state"]
