"""Batches submitted in turn (an import): each batch's records are built and signed on another
thread while the batch before is written. What is written must be what ``submit_records``
writes batch by batch, a refusal must stop the run where it happens, and records signed ahead
must not keep a key the log retired meanwhile."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from sqlalchemy import select

from domain import clock
from domain.identifiers import SubjectRef
from domain.records import record_id
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import RecordAlreadySubmitted
from proofs import envelope
from tests.conftest import ENTERPRISE, PERSON, at, submission
from tests.integration.test_ledger import counts, verify_clean
from workflows.services import CreditServices, RecordSubmission

OTHER = SubjectRef("uscc", "914403001922038216")  # a valid code, as the others


def record_ids(batch: list[RecordSubmission]) -> list[str]:
    return [str(record_id(department=s.actor, item_code=s.item_code,
                          decision_number=s.decision_number, subject_key=s.subject.key))
            for s in batch]


def kids(app: CreditLedger, ids: list[str]) -> set[str]:
    """The keys the events of these aggregates were signed with."""
    events = app.recorder.events_table
    with app.engine.connect() as conn:
        states = conn.execute(select(events.c.state).where(
            events.c.originator_id.in_([UUID(i) for i in ids]))).scalars().all()
    assert len(states) == len(ids)
    return {envelope.decode(bytes(state)).kid for state in states}


@pytest.mark.initialised
def test_batches_in_turn_write_what_submit_records_writes(
        ledger: CreditLedger, services: CreditServices) -> None:
    batches = [
        [submission("tax", 1), submission("tax", 2, subject=PERSON)],
        [submission("tax", 3), submission("market", 4, subject=OTHER)],  # one known, one new
        [submission("court", 5, subject=PERSON)],
    ]
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        written = list(services.submit_record_batches(batches))
    assert [[str(i) for i in w.record_ids] for w in written] == [record_ids(b) for b in batches]
    assert [w.subjects_registered for w in written] == [2, 1, 0]
    with ledger.engine.connect() as conn:
        streams = conn.execute(select(tables.log.c.stream).order_by(tables.log.c.position)
                               ).scalars().all()
    # each batch: its registrations first, then its records, in the order given
    assert streams[-8:] == ["Subject", "Subject", "CreditRecord", "CreditRecord",
                            "Subject", "CreditRecord", "CreditRecord", "CreditRecord"]
    verify_clean(ledger)


@pytest.mark.initialised
def test_a_refused_batch_stops_the_run_with_the_batches_before_it_written(
        ledger: CreditLedger, services: CreditServices) -> None:
    first = [submission("tax", 1), submission("tax", 2)]
    twice = [submission("tax", 3), submission("tax", 3)]
    never = [submission("tax", 4)]
    before = counts(ledger)
    written = []
    with clock.frozen_at(at("2020-02-01T00:00:00")), pytest.raises(
            RecordAlreadySubmitted, match="the same record twice"):
        for batch in services.submit_record_batches([first, twice, never]):
            written.append(batch)
    assert [[str(i) for i in w.record_ids] for w in written] == [record_ids(first)]
    assert counts(ledger)[0] == before[0] + 3  # the subject and the first batch's two records
    assert ledger.existing(written[0].record_ids) == set(written[0].record_ids)
    assert ledger.existing(UUID(i) for i in record_ids(never)) == set()
    verify_clean(ledger)


@pytest.mark.initialised
def test_records_signed_ahead_are_signed_again_when_a_key_changed_meanwhile(
        ledger: CreditLedger, services: CreditServices) -> None:
    batch = [submission("tax", 1), submission("tax", 2)]
    with clock.frozen_at(at("2020-02-03T00:00:00")):
        presigned = services._sign_records(*services._ready(batch))
        # the key the records were signed with is retired before they are saved
        assert ledger.rotate_key("tax") == "tax-2020-2"
        ledger.revoke_key("tax-2020-1", reason="retired")
        services._store_records(batch, presigned())
    assert kids(ledger, record_ids(batch)) == {"tax-2020-2"}
    verify_clean(ledger)


@pytest.mark.initialised
def test_records_signed_ahead_keep_their_signatures_when_no_key_changed(
        ledger: CreditLedger, services: CreditServices) -> None:
    batch = [submission("tax", 1, decided=date(2020, 1, 20))]
    with clock.frozen_at(at("2020-02-03T00:00:00")):
        presigned = services._sign_records(*services._ready(batch))()
        services._store_records(batch, presigned)
    events = ledger.recorder.events_table
    with ledger.engine.connect() as conn:
        stored = conn.execute(select(events.c.state).where(
            events.c.originator_id == presigned.events[0].originator_id)).scalar_one()
    assert bytes(stored) == presigned.stored[0].state
    assert ENTERPRISE.key in presigned.stored[0].state.decode()
    verify_clean(ledger)
