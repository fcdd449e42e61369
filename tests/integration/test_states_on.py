"""``states_on`` (one replay, a view per day: the window's grade chart) gives exactly what
``subject_state`` gives for each day, for every subject of the demo city."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from domain import clock
from domain.state import states_on, subject_state
from ledger.application import CreditLedger
from ledger.settings import Settings

DAYS = [date(2016, 3, 1), date(2019, 7, 15), date(2022, 1, 3), date(2024, 11, 30),
        date(2026, 6, 1)]


def test_one_replay_for_many_days_equals_a_replay_per_day(city: Settings) -> None:
    ledger = CreditLedger(city)
    try:
        ledger.refresh()
        now = clock.now()
        with ledger.engine.connect() as conn:
            subjects = [r[0] for r in conn.execute(text(
                "SELECT DISTINCT subject FROM ledger_log WHERE subject IS NOT NULL"))]
        assert len(subjects) > 50
        for subject in subjects:
            facts = ledger.facts_about(subject)
            many = states_on(subject, facts, ledger.policy_facts, DAYS, now)
            for day, state in zip(DAYS, many, strict=True):
                assert state == subject_state(subject, facts, ledger.policy_facts, day, now), \
                    (subject, day)
    finally:
        ledger.close()
