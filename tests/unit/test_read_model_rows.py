"""The subjects read model's rows, as ``projections.subjects`` makes them from a state: each value
in its column, and JSON text as ``json.dumps`` writes it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from projections.schema import tables_of
from projections.subjects import _JSON, _SORTED_JSON, COLUMNS, row_values_of, rows_of


class _Fields(dict[str, Any]):
    """A state's item whose every field holds its own name (``records.summary``): a value in
    the wrong column shows whose it is."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, field: str) -> str:
        return f"{self.kind}.{field}"


ITEMS = {"proj_records": "records", "proj_listings": "listings",
         "proj_objections": "objections", "proj_repairs": "repairs"}
JSON_COLUMNS = {"details", "measures"}


def _state() -> dict[str, Any]:
    grade = {"grade": "A", "points": 97, "policy": "grading-1", "explanation": ["x"],
             "override": None}
    return {"subject": "uscc:91330185MA2B3C4D5E", "kind": "enterprise", "name": "某公司",
            "changes_on": "2027-01-01", "grade": grade,
            **{kind: [_Fields(kind)] for kind in ITEMS.values()}}


def test_every_column_holds_the_state_s_field_of_its_name() -> None:
    state = _state()
    rows = rows_of(state)
    for table, kind in ITEMS.items():
        (row,) = rows[table]
        assert list(row) == [column.name for column in tables_of("subjects", 0)[table].columns]
        for column, value in row.items():
            field = f"{kind}.{column}"
            expected = (state["subject"] if column == "subject"
                        else json.dumps(field, ensure_ascii=False) if column in JSON_COLUMNS
                        else field)
            assert value == expected, f"{table}.{column}"
    (subject,) = rows["proj_subjects"]
    assert subject == {
        "subject": state["subject"], "scheme": "uscc", "kind": "enterprise", "name": "某公司",
        "grade": "A", "points": 97, "grade_policy": "grading-1",
        "grade_explanation": json.dumps({"explanation": ["x"], "override": None},
                                        ensure_ascii=False),
        "black_listed": False, "red_listed": False, "records": 1,
        "public_records": 1,  # the field holds text, which counts as true
        "open_objections": 0, "changes_on": "2027-01-01"}
    assert {name: [tuple(r.values()) for r in part] for name, part in rows.items()} \
        == row_values_of(state)
    assert set(COLUMNS) == set(rows)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(st.dictionaries(st.text(), JSON_VALUES, max_size=6))
def test_json_text_is_what_json_dumps_writes(value: dict[str, Any]) -> None:
    assert _SORTED_JSON(value) == json.dumps(value, ensure_ascii=False, sort_keys=True)
    assert _JSON(value) == json.dumps(value, ensure_ascii=False)
