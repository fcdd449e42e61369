"""Batches submitted in turn (an import): each batch's records are built and signed on another
thread, or in a process of their own, while the batch before is written. What is written must be
what ``submit_records`` writes batch by batch (wherever it was signed), a refusal must stop the
run where it happens, and records signed ahead must not keep a key the log retired meanwhile."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from domain import clock
from domain.identifiers import SubjectRef
from domain.records import record_id
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import RecordAlreadySubmitted, SubjectNotRegistered
from ledger.presigning import Presigner
from proofs import envelope
from tests.conftest import ENTERPRISE, PERSON, at, submission
from tests.integration.test_ledger import counts, verify_clean
from workflows.services import CreditServices, RecordSubmission, submission_events

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


def presigners(ledger: CreditLedger, monkeypatch: pytest.MonkeyPatch) -> list[Presigner]:
    """The presigners the ledger hands out from now on (to see where batches were signed)."""
    made: list[Presigner] = []
    opened = ledger.presigning

    @contextmanager
    def presigning(processes: bool | None = None) -> Iterator[Presigner]:
        with opened(processes) as presigner:
            made.append(presigner)
            yield presigner
    monkeypatch.setattr(ledger, "presigning", presigning)
    return made


IN_PROCESS = pytest.mark.parametrize("processes", [False, True], ids=["thread", "process"])


@pytest.mark.initialised
@IN_PROCESS
def test_batches_in_turn_write_what_submit_records_writes(
        ledger: CreditLedger, services: CreditServices, processes: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    made = presigners(ledger, monkeypatch)
    batches = [
        [submission("tax", 1), submission("tax", 2, subject=PERSON)],
        [submission("tax", 3), submission("market", 4, subject=OTHER)],  # one known, one new
        [submission("court", 5, subject=PERSON)],
    ]
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        written = list(services.submit_record_batches(batches, processes=processes))
    # the first batch on the thread (the process starts once a second batch comes)
    assert [p.batches_in_process for p in made] == [2 if processes else 0]
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
@IN_PROCESS
def test_new_subjects_are_registered_with_the_records_signed_ahead_not_by_the_writer(
        ledger: CreditLedger, services: CreditServices, processes: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the writer signs nothing of an import's batches: each new subject's registration is
    # built and signed ahead with the batch's records, once, though the batch that names it
    # again is signed before the one registering it is written
    signed_by_writer: list[int] = []
    signing = ledger.events.mapper.to_stored_events

    def counted(events: Any) -> Any:
        signed_by_writer.append(len(events))
        return signing(events)
    monkeypatch.setattr(ledger.events.mapper, "to_stored_events", counted)
    batches = [[submission("tax", 1), submission("tax", 2, subject=PERSON)],
               [submission("tax", 3, subject=PERSON), submission("market", 4, subject=OTHER)],
               [submission("court", 5, subject=OTHER), submission("court", 6)]]
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        written = list(services.submit_record_batches(batches, processes=processes))
    assert [w.subjects_registered for w in written] == [2, 1, 0]
    assert signed_by_writer == [0, 0, 0]
    with ledger.engine.connect() as conn:
        subjects = conn.execute(select(tables.log.c.subject).where(
            tables.log.c.stream == "Subject")).scalars().all()
    assert sorted(subjects) == sorted([ENTERPRISE.key, PERSON.key, OTHER.key])
    verify_clean(ledger)


@pytest.mark.initialised
@IN_PROCESS
def test_a_batch_naming_an_unknown_subject_without_its_name_is_refused_after_the_one_before(
        ledger: CreditLedger, services: CreditServices, processes: bool) -> None:
    # its registration is decided before the batch before it is written; the refusal still
    # comes where the batch is stored, with the batches before it written
    first = [submission("tax", 1)]
    nameless = [replace(submission("tax", 2, subject=OTHER), subject_name=None)]
    written = []
    with clock.frozen_at(at("2020-02-01T00:00:00")), pytest.raises(
            SubjectNotRegistered, match="give its name"):
        for batch in services.submit_record_batches([first, nameless], processes=processes):
            written.append(batch)
    assert [[str(i) for i in w.record_ids] for w in written] == [record_ids(first)]
    assert ledger.existing(UUID(i) for i in record_ids(nameless)) == set()
    verify_clean(ledger)


@pytest.mark.initialised
@IN_PROCESS
def test_a_refused_batch_stops_the_run_with_the_batches_before_it_written(
        ledger: CreditLedger, services: CreditServices, processes: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    first = [submission("tax", 1), submission("tax", 2)]
    twice = [submission("tax", 3), submission("tax", 3)]
    never = [submission("tax", 4)]
    before = counts(ledger)
    written = []
    with clock.frozen_at(at("2020-02-01T00:00:00")), pytest.raises(
            RecordAlreadySubmitted, match="the same record twice"):
        for batch in services.submit_record_batches([first, twice, never], processes=processes):
            written.append(batch)
    assert [[str(i) for i in w.record_ids] for w in written] == [record_ids(first)]
    assert counts(ledger)[0] == before[0] + 3  # the subject and the first batch's two records
    assert ledger.existing(written[0].record_ids) == set(written[0].record_ids)
    assert ledger.existing(UUID(i) for i in record_ids(never)) == set()
    # a refusal is the run's own error, not the signing process's: nothing logged for it
    assert not [r for r in caplog.records if r.name == "ledger.presigning"]
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


def signed_both_ways(ledger: CreditLedger, services: CreditServices,
                     batch: list[RecordSubmission],
                     before_hand_over: Callable[[Presigner], None] = lambda _: None,
                     ) -> tuple[Any, Any, Presigner]:
    """The batch built and signed on this thread, and handed to the signing process (after
    ``before_hand_over`` has done what it does to the started process)."""
    _, catalogues, snapshot = services._ready(batch)
    here = services._sign_records(batch, catalogues, snapshot)()
    with ledger.presigning(processes=True) as presigner:
        presigner.start_process()
        before_hand_over(presigner)
        there = presigner.presign(submission_events, (batch, catalogues),
                                  services._ready(batch)[2])()
    return here, there, presigner


def stored_rows(presigned: Any) -> list[tuple[Any, ...]]:
    return [(s.originator_id, s.originator_version, s.topic, s.state) for s in presigned.stored]


@pytest.mark.initialised
def test_a_batch_signed_in_the_process_is_byte_for_byte_the_one_signed_here(
        ledger: CreditLedger, services: CreditServices) -> None:
    # Ed25519 signatures are deterministic: the same events under the same keys and clock
    # give the same stored bytes, whichever process built and signed them
    batch = [submission("tax", 1), submission("market", 2, subject=OTHER),
             submission("court", 3, subject=PERSON, decided=date(2019, 12, 2))]
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        here, there, presigner = signed_both_ways(ledger, services, batch)
    assert presigner.batches_in_process == 1
    assert stored_rows(there) == stored_rows(here)
    assert [vars(e) for e in there.events] == [vars(e) for e in here.events]
    assert [type(e) for e in there.events] == [type(e) for e in here.events]
    assert there.seen == here.seen
    with clock.frozen_at(at("2020-02-01T00:00:01")):
        services._store_records(batch, there)
    verify_clean(ledger)


@pytest.mark.initialised
def test_the_process_signs_at_the_callers_clock(
        ledger: CreditLedger, services: CreditServices) -> None:
    batch = [submission("tax", 1)]
    with clock.frozen_at(at("2020-03-04T05:06:07")):
        _, there, _ = signed_both_ways(ledger, services, batch)
    assert envelope.decode(there.stored[0].state).at == "2020-03-04T05:06:07.000000+00:00"


@pytest.mark.initialised
def test_records_signed_in_the_process_are_signed_again_when_a_key_changed_meanwhile(
        ledger: CreditLedger, services: CreditServices) -> None:
    batch = [submission("tax", 1), submission("tax", 2)]
    with clock.frozen_at(at("2020-02-03T00:00:00")):
        _, there, _ = signed_both_ways(ledger, services, batch)
        assert {envelope.decode(s.state).kid for s in there.stored} == {"tax-2020-1"}
        assert ledger.rotate_key("tax") == "tax-2020-2"
        ledger.revoke_key("tax-2020-1", reason="retired")
        services._store_records(batch, there)
    assert kids(ledger, record_ids(batch)) == {"tax-2020-2"}
    verify_clean(ledger)


@pytest.mark.initialised
def test_a_ledger_whose_keys_are_not_from_its_settings_signs_on_the_thread(
        ledger: CreditLedger) -> None:
    # a process opens the keys from the settings: a key store handed in is not one it can open
    other = CreditLedger(ledger.settings, keystore=ledger.keystore)
    try:
        with other.presigning(processes=True) as presigner:
            presigner.start_process()
            assert presigner._process is None
    finally:
        other.close()


@pytest.mark.initialised
def test_a_signing_process_that_died_leaves_the_batches_to_the_thread(
        ledger: CreditLedger, services: CreditServices, monkeypatch: pytest.MonkeyPatch) -> None:
    made = presigners(ledger, monkeypatch)
    batches = [[submission("tax", n)] for n in range(1, 6)]
    written = []
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        for batch in services.submit_record_batches(batches, processes=True):
            written.append(batch)
            if len(written) == 2:  # the third batch is in the process: it dies (the OOM killer)
                for child in made[0]._process._processes.values():  # type: ignore[union-attr]
                    child.kill()
    assert [[str(i) for i in w.record_ids] for w in written] == [record_ids(b) for b in batches]
    assert made[0]._process is None  # given up: not started again
    assert 1 <= made[0].batches_in_process <= 3
    verify_clean(ledger)


@pytest.mark.initialised
def test_a_process_that_cannot_open_the_keys_the_writer_holds_is_said_once_and_dropped(
        ledger: CreditLedger, services: CreditServices, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # The writer made the keys and holds them open; the folder is loosened afterwards, so the
    # process, which opens them from their files, refuses them. Its error (LooseKeyPermissions)
    # could not be rebuilt in the writer and broke the pool: the run went on more slowly, and
    # nothing said why.
    with clock.frozen_at(at("2020-02-01T00:00:00")):  # the writer opens tax's key
        list(services.submit_record_batches([[submission("tax", 99)]], processes=False))
    made = presigners(ledger, monkeypatch)
    keys = ledger.settings.keys_dir
    os.chmod(keys, 0o755)
    batches = [[submission("tax", n)] for n in range(1, 6)]
    try:
        with caplog.at_level(logging.WARNING, logger="ledger.presigning"), \
                clock.frozen_at(at("2020-02-01T00:00:01")):
            written = list(services.submit_record_batches(batches, processes=True))
    finally:
        os.chmod(keys, 0o700)
    assert [[str(i) for i in w.record_ids] for w in written] == [record_ids(b) for b in batches]
    said = [r.getMessage() for r in caplog.records if r.name == "ledger.presigning"]
    assert len(said) == 1, said
    assert "LooseKeyPermissions" in said[0] and f"chmod 700 {keys}" in said[0]
    assert made[0]._process is None and made[0].batches_in_process == 1
    verify_clean(ledger)


@pytest.mark.initialised
def test_a_batch_handed_to_a_process_that_is_gone_is_signed_on_the_thread(
        ledger: CreditLedger, services: CreditServices) -> None:
    def kill_the_process(presigner: Presigner) -> None:
        pool = presigner._process
        assert pool is not None
        for child in pool._processes.values():  # type: ignore[attr-defined]
            child.kill()
        with pytest.raises(Exception):  # noqa: B017  (the pool's own error, once it sees)
            pool.submit(int).result(timeout=30)

    batch = [submission("tax", 1)]
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        here, there, presigner = signed_both_ways(ledger, services, batch, kill_the_process)
    assert presigner.batches_in_process == 0 and presigner._process is None
    assert stored_rows(there) == stored_rows(here)


@pytest.mark.initialised
def test_an_import_that_never_used_the_process_does_not_wait_for_it_to_start(
        ledger: CreditLedger, services: CreditServices, monkeypatch: pytest.MonkeyPatch) -> None:
    made = presigners(ledger, monkeypatch)
    waited: list[bool] = []
    shutdown = ProcessPoolExecutor.shutdown

    def recorded(pool: ProcessPoolExecutor, wait: bool = True, **kwargs: Any) -> None:
        waited.append(wait)
        shutdown(pool, wait=wait, **kwargs)
    monkeypatch.setattr(ProcessPoolExecutor, "shutdown", recorded)
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        list(services.submit_record_batches([[submission("tax", 1)], [submission("tax", 2)]]))
        assert made[0].batches_in_process == 0 and waited == [False]  # started, never used
        list(services.submit_record_batches([[submission("tax", 3)], [submission("tax", 4)]],
                                            processes=True))
    assert made[1].batches_in_process == 1 and waited == [False, True]
    verify_clean(ledger)


@pytest.mark.initialised
def test_the_collector_is_set_aside_while_a_batch_is_written_not_between_batches(
        services: CreditServices, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import's batches are written with the cycle collector run rarely (its full
    collections over the process's caches cost 12-14 us an event); the caller's own work
    between batches runs with the collector as it was."""
    import gc

    from ledger.collector import BULK_YOUNG
    seen: list[int] = []
    store = services._store_records

    def storing(*args: Any) -> Any:
        seen.append(gc.get_threshold()[0])
        return store(*args)
    monkeypatch.setattr(services, "_store_records", storing)
    usual = gc.get_threshold()
    batches = [[submission("tax", 1)], [submission("tax", 2)], [submission("tax", 3)]]
    between = []
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        for _ in services.submit_record_batches(batches, processes=False):
            between.append(gc.get_threshold())
    assert seen == [BULK_YOUNG] * 3
    assert between == [usual] * 3
    assert gc.get_threshold() == usual
