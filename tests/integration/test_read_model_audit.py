"""`credit verify --projections`: read-model rows recomputed from the log, every edited row
named, and `credit rebuild` repairs them. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from domain import clock
from ledger.application import CreditLedger
from projections.runner import ProjectionRunner
from tests.conftest import ENTERPRISE, PERSON, at, submission
from workflows.services import CreditServices

TODAY = date(2020, 9, 1)


@pytest.mark.initialised
def test_an_edited_read_model_row_is_named_and_a_rebuild_repairs_it(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-10T02:00:00")):
        services.submit_records([submission("tax", 1, decided=date(2020, 3, 1)),
                                 submission("market", 2, PERSON, decided=date(2020, 3, 2))])
    runner = ProjectionRunner(ledger)
    runner.catch_up(today=TODAY)
    assert runner.audit() == (2, [])
    with ledger.engine.begin() as conn:  # someone edits the lookup's row directly
        generation = conn.execute(text(
            "SELECT generation FROM proj_positions WHERE name = 'subjects'")).scalar()
        conn.execute(text(f"UPDATE proj_subjects_g{generation} SET grade = 'A', points = 120 "
                          "WHERE subject = :s"), {"s": ENTERPRISE.key})
        conn.execute(text(f"UPDATE proj_records_g{generation} SET public = :no "
                          "WHERE subject = :s"), {"s": ENTERPRISE.key, "no": False})
    checked, problems = runner.audit()
    assert checked == 2 and len(problems) == 2, problems
    assert any(p.startswith("proj_subjects of " + ENTERPRISE.key) and "points is '120'" in p
               for p in problems)
    assert any(p.startswith("proj_records of " + ENTERPRISE.key) and "public" in p
               for p in problems)
    assert runner.audit(sample=1)[0] == 1
    runner.rebuild("subjects", today=TODAY)
    assert runner.audit() == (2, [])
