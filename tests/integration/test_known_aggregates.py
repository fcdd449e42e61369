"""The writer remembers which aggregates have events (``ledger/known_aggregates.py``): asked
again, ``existing`` answers without the database; what it saw inside a write is remembered only
if that write commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import pytest
from sqlalchemy import event

from domain import clock
from domain.identifiers import SubjectRef
from domain.subjects import subject_id
from ledger.application import CreditLedger
from ledger.known_aggregates import KnownAggregates
from tests.conftest import ENTERPRISE, PERSON, at, submission
from workflows.services import CreditServices

NEW = SubjectRef("uscc", "914403001922038216")


@contextmanager
def statements(ledger: CreditLedger) -> Iterator[list[str]]:
    """The SQL statements run on the ledger's engine in the block."""
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)
    event.listen(ledger.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(ledger.engine, "before_cursor_execute", before)


@pytest.mark.initialised
def test_aggregates_seen_with_events_are_not_asked_about_again(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        services.submit_records([submission("tax", 1), submission("tax", 2, subject=PERSON)])
    held = {subject_id(ENTERPRISE.key), subject_id(PERSON.key)}
    unknown = uuid4()
    with statements(ledger) as first:
        assert ledger.existing([*held, unknown]) == held
    assert any("originator_id" in s for s in first)
    with statements(ledger) as second:
        assert ledger.existing(held) == held
    assert second == []  # from memory
    with statements(ledger) as third:  # an id without events is always asked about
        assert ledger.existing([unknown]) == set()
    assert any("originator_id" in s for s in third)


@pytest.mark.initialised
def test_what_a_bulk_write_saw_is_remembered_only_if_it_commits(
        ledger: CreditLedger, services: CreditServices) -> None:
    new = subject_id(NEW.key)
    with pytest.raises(RuntimeError), clock.frozen_at(at("2020-02-01T00:00:00")), \
            ledger.recorder.bulk():
        services.submit_records([submission("tax", 1, subject=NEW)])
        assert ledger.existing([new]) == {new}  # its own, uncommitted, registration
        raise RuntimeError("the import fails later")
    assert ledger.existing([new]) == set()  # rolled back: not remembered as having events
    with clock.frozen_at(at("2020-02-01T00:00:00")), ledger.recorder.bulk():
        services.submit_records([submission("tax", 1, subject=NEW)])
        assert ledger.existing([new]) == {new}
    with statements(ledger) as after:
        assert ledger.existing([new]) == {new}
    assert after == []  # committed: remembered


def test_the_memory_is_bounded_and_keeps_the_newest() -> None:
    known = KnownAggregates(limit=100)
    ids = [uuid4() for _ in range(250)]
    for start in range(0, 250, 10):
        known.committed(ids[start:start + 10])
    assert len(known) <= 100
    assert known.among(ids[-40:]) == set(ids[-40:])
    assert known.among(ids[:50]) == set()
    known.staged(ids[:5])
    known.write_rolled_back()
    known.write_committed()
    assert known.among(ids[:5]) == set()
