"""A poison row never wedges the platform: what a read model cannot store is recorded as a
fault and skipped, the rest goes on, the status shows it, and a rebuild after the fix clears it.
SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from domain import clock, validation
from ledger.application import CreditLedger
from projections import subjects as subjects_projection
from projections.runner import ProjectionRunner
from tests.conftest import ENTERPRISE, PERSON, at, submission
from workflows.services import CreditServices

TODAY = date(2020, 9, 1)


def project(ledger: CreditLedger) -> ProjectionRunner:
    runner = ProjectionRunner(ledger)
    runner.catch_up(today=TODAY)
    return runner


@pytest.mark.initialised
def test_a_subject_the_read_model_cannot_store_is_a_fault_and_the_rest_goes_on(
        ledger: CreditLedger, services: CreditServices, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = project(ledger)
    real = subjects_projection.row_values_of

    def poisoned(state: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
        if state["subject"] == PERSON.key:  # a bug, or data the database will not take
            raise ValueError("this subject's rows cannot be stored")
        return real(state)

    monkeypatch.setattr(subjects_projection, "row_values_of", poisoned)
    with clock.frozen_at(at("2020-03-10T02:00:00")):
        services.submit_records([submission("tax", 1, decided=date(2020, 3, 1)),
                                 submission("market", 2, PERSON, decided=date(2020, 3, 2))])
    runner.catch_up(today=TODAY)  # does not raise: the ledger is not blocked
    (fault,) = runner.faults()
    assert fault["projection"] == "subjects" and "cannot be stored" in fault["reason"]
    assert PERSON.code not in fault["subject"]  # masked
    status = {p["name"]: p for p in runner.status()}
    assert status["subjects"]["behind"] == 0
    assert runner.audit()[1]  # the missing rows are named too
    # later writes go on being projected
    with clock.frozen_at(at("2020-04-10T02:00:00")):
        services.submit_record(submission("tax", 3, decided=date(2020, 4, 1)))
    runner.catch_up(today=TODAY)
    monkeypatch.setattr(subjects_projection, "row_values_of", real)  # the fix
    runner.rebuild("subjects", today=TODAY)
    assert runner.faults() == []
    assert runner.audit() == (2, [])


@pytest.mark.initialised
def test_a_nul_stored_by_an_earlier_version_does_not_wedge_the_read_models(
        backend: str, ledger: CreditLedger, services: CreditServices,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Events signed before input was validated may hold U+0000, which PostgreSQL text refuses.
    runner = project(ledger)
    with monkeypatch.context() as old_version:
        old_version.setattr(validation, "check_text", lambda *args, **kwargs: None)
        with clock.frozen_at(at("2020-03-10T02:00:00")):
            services.submit_record(submission("tax", 1, ENTERPRISE, decided=date(2020, 3, 1)))
            services.submit_record(replace(submission("market", 2, PERSON,
                                                      decided=date(2020, 3, 2)),
                                           summary="逾期\u0000申报"))
    runner.catch_up(today=TODAY)
    faults = runner.faults()
    if backend == "postgresql":
        assert [f["projection"] for f in faults] == ["subjects"]
        assert "NUL" in faults[0]["reason"] or "0x00" in faults[0]["reason"]
    else:
        assert faults == []  # SQLite stores it
    assert {p["name"]: p["behind"] for p in runner.status()}["subjects"] == 0
