"""Edit the store directly with SQL, as an insider could, and expect `verify` to name what changed.

Each test runs on SQLite and PostgreSQL against a fresh copy of the scenario in conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from domain.clock import naive_utc
from keys.signer import Signer
from keys.store import KeyStore
from ledger.application import EVENTS_TABLE, CreditLedger
from ledger.settings import Settings
from ledger.verify import LedgerVerifier, VerifyReport, read_in_key_order
from proofs import envelope
from proofs.checkpoint import make_checkpoint, parse_checkpoint
from tests.conftest import ATTACKER_COPIES, PASSPHRASE


@contextmanager
def engine_of(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def verify(settings: Settings, *, processes: bool | None = None) -> VerifyReport:
    app = CreditLedger(settings)
    try:
        platform = app.registry.keys["platform-2020-1"].public_key
        return LedgerVerifier(app.engine, app.recorder.events_table,
                              trusted_platform_keys=[platform], processes=processes).run()
    finally:
        app.close()


def events(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(text(
            f"SELECT id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
            "ORDER BY id")).all()


def uuid_of(engine: Engine, raw: Any) -> UUID:
    return UUID(bytes=bytes(raw)) if engine.dialect.name == "sqlite" else UUID(str(raw))


def set_state(engine: Engine, nid: int, state: bytes) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {EVENTS_TABLE} SET state = :s WHERE id = :id"),
                     {"s": state, "id": nid})


def resign(engine: Engine, row: Any, signer: Signer, payload: bytes | None = None) -> bytes:
    """The row's event with (optionally) a new payload, signed by ``signer`` per FORMAT.md."""
    sealed = envelope.decode(bytes(row.state))
    body = sealed.payload if payload is None else payload
    oid = uuid_of(engine, row.originator_id)
    message = envelope.signed_bytes(oid, row.originator_version, row.topic, sealed.actor,
                                    sealed.at, signer.kid, body)
    return envelope.encode(sealed.actor, sealed.at, signer.kid, signer.sign(message), body)


def checks(report: VerifyReport) -> list[str]:
    """The checks that failed, in report order (the first failure first)."""
    return [f.check for f in report.failures]


def named(report: VerifyReport) -> set[tuple[str, int | None]]:
    """(check, notification id) of every failure."""
    return {(f.check, f.notification_id) for f in report.failures}


def first(report: VerifyReport) -> str:
    assert not report.ok, "verify passed a tampered store"
    assert report.first_failure is not None
    return str(report.first_failure)


def test_an_untouched_store_verifies_clean(scenario: Settings) -> None:
    report = verify(scenario)
    assert report.ok, report.failures
    assert report.failure_count == 0
    assert report.events > 40
    assert report.checkpoints > 10
    assert report.uncheckpointed == 0
    assert "trusted platform key" in report.trust


def test_one_byte_changed_in_a_payload_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        row = [r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted")][5]
        state = bytearray(bytes(row.state))
        where = bytes(state).index(b'"amount":"') + len(b'"amount":"')
        state[where] = ord("9") if state[where] != ord("9") else ord("8")
        set_state(engine, row.id, bytes(state))
    report = verify(scenario)
    failure = report.first_failure
    assert failure is not None and failure.notification_id == row.id
    assert failure.version == row.originator_version
    assert failure.check == "signature" and "tax-" in failure.reason
    assert ("log", row.id) in named(report)


def test_worker_processes_name_the_same_failures_as_threads(scenario: Settings) -> None:
    # large stores are checked in worker processes: their failures come back whole
    with engine_of(scenario) as engine:
        row = [r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted")][1]
        set_state(engine, row.id, bytes(row.state).replace(b'"amount":"', b'"amount":"9'))
    in_threads = verify(scenario, processes=False)
    in_processes = verify(scenario, processes=True)
    assert ("signature", row.id) in named(in_processes)
    assert in_processes.failures == in_threads.failures


def test_two_events_payloads_swapped_are_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        a, b = [r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted")][2:4]
        set_state(engine, a.id, bytes(b.state))
        set_state(engine, b.id, bytes(a.state))
    report = verify(scenario)
    assert report.first_failure is not None
    assert report.first_failure.notification_id == a.id
    assert report.first_failure.check == "signature"
    assert ("signature", b.id) in named(report)


def test_a_middle_event_deleted_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        rows = events(engine)
        middle = rows[len(rows) // 2]
        with engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {EVENTS_TABLE} WHERE id = :id"), {"id": middle.id})
    report = verify(scenario)
    failure = report.first_failure
    assert failure is not None and failure.notification_id == middle.id
    assert failure.version == middle.originator_version
    assert failure.check == "log"
    assert "checkpoint" in checks(report)


def test_the_last_event_deleted_after_a_checkpoint_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        last = events(engine)[-1]
        with engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {EVENTS_TABLE} WHERE id = :id"), {"id": last.id})
    report = verify(scenario)
    failure = report.first_failure
    assert failure is not None and failure.notification_id == last.id
    assert failure.check == "log"
    assert "checkpoint" in checks(report)


def test_a_forged_event_signed_with_an_unregistered_key_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        template = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted"))
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        forger = Signer("tax-2021-9", Ed25519PrivateKey.generate())
        forged_id = uuid4()
        sealed = envelope.decode(bytes(template.state))
        message = envelope.signed_bytes(forged_id, 1, template.topic, "tax", sealed.at,
                                        forger.kid, sealed.payload)
        state = envelope.encode("tax", sealed.at, forger.kid, forger.sign(message),
                                sealed.payload)
        oid: Any = forged_id.bytes if engine.dialect.name == "sqlite" else str(forged_id)
        with engine.begin() as conn:
            conn.execute(text(
                f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                "VALUES (:o, 1, :t, :s)"), {"o": oid, "t": template.topic, "s": state})
        forged_nid = events(engine)[-1].id
    report = verify(scenario)
    failure = report.first_failure
    assert failure is not None and failure.notification_id == forged_nid
    assert failure.originator_id == str(forged_id)
    assert failure.check == "key" and "tax-2021-9" in failure.reason
    assert report.uncheckpointed == 1


def test_an_event_resigned_with_a_revoked_key_is_named(scenario: Settings,
                                                       keystore: KeyStore) -> None:
    with engine_of(scenario) as engine:
        # A tax record written in August 2021, after tax-2020-1 was revoked from 2021-06-15.
        row = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted")
               and b'"actor":"tax"' in bytes(r.state)
               and b"2021-08-01" in bytes(r.state))
        payload = envelope.decode(bytes(row.state)).payload.replace(b"900.00", b"9.00")
        # the ledger deleted the retired key; an attacker kept a copy
        assert not keystore.private_path("tax-2020-1").exists()
        kept = KeyStore(keystore.directory / ATTACKER_COPIES, PASSPHRASE)
        set_state(engine, row.id, resign(engine, row, kept.signer("tax-2020-1"), payload))
    report = verify(scenario)
    failure = report.first_failure
    assert failure is not None and failure.notification_id == row.id
    assert failure.check == "key" and "tax-2020-1" in failure.reason


def test_a_checkpoint_replaced_by_an_inconsistent_one_is_named(scenario: Settings,
                                                               keystore: KeyStore) -> None:
    with engine_of(scenario) as engine:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT seq, tree_size, note FROM ledger_checkpoints ORDER BY seq")).all()
        target = rows[len(rows) // 2]
        original = parse_checkpoint(target.note)
        platform = keystore.signer("platform-2020-1")
        # A validly signed checkpoint of the same size whose root the log never had.
        forged = make_checkpoint(original.origin, original.tree_size, bytes(32),
                                 original.issued_at, original.chain_root, platform.kid,
                                 platform.public_key, platform.sign)
        with engine.begin() as conn:
            conn.execute(text(
                "UPDATE ledger_checkpoints SET note = :n, root_hash = :r WHERE seq = :s"),
                {"n": forged.note, "r": forged.root_hash, "s": target.seq})
    report = verify(scenario)
    assert not report.ok
    assert checks(report) == ["checkpoint", "consistency"]
    assert all(f"checkpoint {target.seq}" in f.reason for f in report.failures)


def test_a_checkpoint_with_a_forged_signature_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        with engine.connect() as conn:
            seq, note = conn.execute(text(
                "SELECT seq, note FROM ledger_checkpoints ORDER BY seq DESC LIMIT 1")).one()
        body, _, sig_line = note.rpartition("\n\n")
        tampered = body.replace("\ntime 2021", "\ntime 2022") + "\n\n" + sig_line
        with engine.begin() as conn:
            conn.execute(text("UPDATE ledger_checkpoints SET note = :n WHERE seq = :s"),
                         {"n": tampered, "s": seq})
    report = verify(scenario)
    # the note no longer matches its signature, nor its stored columns
    assert checks(report) == ["checkpoint", "checkpoint"]
    assert all(f.reason.startswith(f"checkpoint {seq}:") for f in report.failures)


def test_a_truncated_log_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        rows = events(engine)
        cut = rows[-5]
        with engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {EVENTS_TABLE} WHERE id >= :id"), {"id": cut.id})
            conn.execute(text("DELETE FROM ledger_log WHERE notification_id >= :id"),
                         {"id": cut.id})
    report = verify(scenario)
    assert not report.ok
    assert report.events == len(rows) - 5
    assert any(f.check == "checkpoint" and str(len(rows) - 5) in f.reason
               for f in report.failures)


@pytest.mark.parametrize("page", [500, 1], ids=["one-page", "page-by-page"])
def test_a_gap_in_an_aggregates_versions_is_named(scenario: Settings, page: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ledger.verify.AGGREGATES_PAGE", page)
    with engine_of(scenario) as engine:
        corrected = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Corrected"))
        oid = corrected.originator_id
        with engine.begin() as conn:
            conn.execute(text(
                f"UPDATE {EVENTS_TABLE} SET originator_version = 3 "
                "WHERE originator_id = :o AND originator_version = 2"), {"o": oid})
    report = verify(scenario)
    assert ("version", corrected.id) in named(report)


def test_a_lone_event_renumbered_is_named(scenario: Settings) -> None:
    """An aggregate of one event whose version is not 1 (the versions check reads only the
    aggregates with more than one event in order: this one must be found too)."""
    with engine_of(scenario) as engine:
        rows = events(engine)
        counts: dict[Any, int] = {}
        for row in rows:
            counts[row.originator_id] = counts.get(row.originator_id, 0) + 1
        lone = next(r for r in rows if counts[r.originator_id] == 1
                    and r.topic.endswith("CreditRecord.Submitted"))
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {EVENTS_TABLE} SET originator_version = 2 WHERE id = :id"),
                         {"id": lone.id})
    report = verify(scenario)
    version = [f for f in report.failures if f.check == "version"]
    assert [(f.notification_id, f.version) for f in version] == [(lone.id, 2)], report.failures
    assert "version 1 is missing" in version[0].reason


def test_a_version_stored_twice_is_named(scenario: Settings) -> None:
    """With the unique index dropped (write access to the database), a second copy of an
    aggregate's first event."""
    with engine_of(scenario) as engine:
        corrected = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Corrected"))
        with engine.begin() as conn:
            conn.execute(text(f"DROP INDEX {EVENTS_TABLE}_aggregate_idx"))
            first_event = conn.execute(text(
                f"SELECT topic, state FROM {EVENTS_TABLE} WHERE originator_id = :o "
                "AND originator_version = 1"), {"o": corrected.originator_id}).one()
            conn.execute(text(
                f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                "VALUES (:o, 1, :t, :s)"),
                {"o": corrected.originator_id, "t": first_event.topic, "s": first_event.state})
    report = verify(scenario)
    assert any(f.check == "version" and "version 1 appears twice" in f.reason
               for f in report.failures), report.failures


def test_a_later_version_filed_under_another_subject_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        corrected = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Corrected"))
        with engine.begin() as conn:
            conn.execute(text("UPDATE ledger_log SET subject = 'uscc:91330185MA00000000' "
                              "WHERE notification_id = :id"), {"id": corrected.id})
    report = verify(scenario)
    assert ("version", corrected.id) in named(report), report.failures
    reason = next(f.reason for f in report.failures if f.check == "version")
    assert "the aggregate's first event under" in reason


def test_a_rewritten_ledger_fails_against_the_trusted_platform_key(scenario: Settings) -> None:
    app = CreditLedger(scenario)
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                       PublicFormat.Raw)
        report = LedgerVerifier(app.engine, app.recorder.events_table,
                                trusted_platform_keys=[other]).run()
    finally:
        app.close()
    assert not report.ok
    first(report)
    assert report.first_failure is not None and report.first_failure.check == "registry"


def test_events_written_outside_the_ledger_are_not_under_a_checkpoint(
        scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        last = events(engine)[-1]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM ledger_checkpoints WHERE tree_size >= "
                              "(SELECT max(tree_size) FROM ledger_checkpoints)"))
            conn.execute(text("DELETE FROM ledger_log WHERE notification_id = :id"),
                         {"id": last.id})
    report = verify(scenario)
    assert report.uncheckpointed >= 1
    assert ("log", last.id) in named(report)


@pytest.mark.parametrize("column", ["kid", "issued_at"])
def test_checkpoint_columns_must_match_the_signed_note(scenario: Settings, column: str) -> None:
    with engine_of(scenario) as engine:
        value: Any = "platform-2099-1" if column == "kid" else naive_utc(
            parse_checkpoint(_first_note(engine)).issued_at + timedelta(days=1))
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE ledger_checkpoints SET {column} = :v WHERE seq = 1"),
                         {"v": value})
    report = verify(scenario)
    assert any(f.check == "checkpoint" and f.reason.startswith("checkpoint 1:")
               for f in report.failures)


def _first_note(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT note FROM ledger_checkpoints WHERE seq = 1"))
                   .scalar())


# -- the chain index (docs/FORMAT.md §7) ------------------------------------------------------


def test_an_event_filed_under_another_subject_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine:
        with engine.connect() as conn:
            position, _nid = conn.execute(text(
                "SELECT position, notification_id FROM ledger_log WHERE subject IS NOT NULL "
                "ORDER BY position DESC LIMIT 1")).one()
        with engine.begin() as conn:
            conn.execute(text("UPDATE ledger_log SET subject = 'uscc:91330185MA00000000' "
                              "WHERE position = :p"), {"p": position})
    report = verify(scenario)
    assert {"log", "checkpoint"} <= set(checks(report)), report.failures


def test_a_stored_chain_head_changed_is_named(scenario: Settings) -> None:
    with engine_of(scenario) as engine, engine.begin() as conn:
        conn.execute(text("UPDATE ledger_chains SET head = :h WHERE chain = '~Authority'"),
                     {"h": bytes(32)})
    report = verify(scenario)
    assert checks(report) == ["chains"]
    assert "~Authority" in report.failures[0].reason


def test_a_checkpoint_with_a_forged_chain_root_is_named(scenario: Settings,
                                                        keystore: KeyStore) -> None:
    with engine_of(scenario) as engine:
        with engine.connect() as conn:
            seq, note = conn.execute(text(
                "SELECT seq, note FROM ledger_checkpoints ORDER BY seq DESC LIMIT 1")).one()
        original = parse_checkpoint(note)
        platform = keystore.signer(original.key_name)
        forged = make_checkpoint(original.origin, original.tree_size, original.root_hash,
                                 original.issued_at, bytes(32), platform.kid,
                                 platform.public_key, platform.sign)
        with engine.begin() as conn:
            conn.execute(text("UPDATE ledger_checkpoints SET note = :n WHERE seq = :s"),
                         {"n": forged.note, "s": seq})
    report = verify(scenario)
    assert checks(report) == ["checkpoint"]
    assert report.failures[0].reason.startswith(f"checkpoint {seq} ")


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_topic_with_a_newline_is_named_not_a_crash(scenario: Settings, processes: bool) -> None:
    """The signed bytes cannot hold such a topic (FORMAT.md §2): the event cannot have been
    signed as stored, so its signature check fails, and verify goes on to the end."""
    with engine_of(scenario) as engine:
        row = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted"))
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {EVENTS_TABLE} SET topic = :t WHERE id = :id"),
                         {"t": row.topic + "\nextra", "id": row.id})
    report = verify(scenario, processes=processes)
    assert ("signature", row.id) in named(report), report.failures
    with engine_of(scenario) as engine:
        assert report.events == len(events(engine))


# -- values of another type: SQLite keeps any value in any column, PostgreSQL refuses them ------

E, L = EVENTS_TABLE, "ledger_log"


def both(statement: str) -> dict[str, str]:
    """The same statement on either database."""
    return {"sqlite": statement, "postgresql": statement}


MISTYPED = {  # what an insider writes on each database, and the check verify names on SQLite
    "id as text": (both(f"UPDATE {E} SET originator_id = 'hello' WHERE id = :id"), "store"),
    "version as text": (both(f"UPDATE {E} SET originator_version = 'x' WHERE id = :id"), "store"),
    "state as text": (both(f"UPDATE {E} SET state = CAST(state AS TEXT) WHERE id = :id"), "store"),
    "topic as bytes": ({"sqlite": f"UPDATE {E} SET topic = CAST(topic AS BLOB) WHERE id = :id",
                        "postgresql": f"UPDATE {E} SET topic = convert_to(topic, 'UTF8') "
                                      "WHERE id = :id"}, "store"),
    "topic not UTF-8": ({"sqlite": f"UPDATE {E} SET topic = CAST(x'ff41' AS TEXT) WHERE id = :id",
                         "postgresql": f"UPDATE {E} SET topic = convert_from('\\xff41'::bytea, "
                                       "'UTF8') WHERE id = :id"}, "store"),
    "leaf as text": ({"sqlite": f"UPDATE {L} SET leaf_hash = 'abc' WHERE notification_id = :id",
                      "postgresql": f"UPDATE {L} SET leaf_hash = 'abc'::text "
                                    "WHERE notification_id = :id"}, "store"),
    "log position as text": (both(f"UPDATE {L} SET position = 'x' WHERE notification_id = :id"),
                             "store"),
    "log event as text": (both(f"UPDATE {L} SET notification_id = 'x' "
                               "WHERE notification_id = :id"), "log"),
    "chain head as text": ({"sqlite": "UPDATE ledger_chains SET head = 'x' WHERE chain = "
                                      "(SELECT subject FROM ledger_log WHERE notification_id = :id)",
                            "postgresql": "UPDATE ledger_chains SET head = 'x'::text WHERE chain = "
                                          "(SELECT subject FROM ledger_log "
                                          "WHERE notification_id = :id)"}, "store"),
}


@pytest.mark.parametrize("case", list(MISTYPED))
def test_a_value_of_another_type_is_named_not_a_crash(scenario: Settings, case: str) -> None:
    statements, check = MISTYPED[case]
    with engine_of(scenario) as engine:
        row = next(r for r in events(engine) if r.topic.endswith("CreditRecord.Submitted"))
        statement = text(statements[engine.dialect.name])
        if engine.dialect.name == "postgresql":
            try:
                with engine.begin() as conn:
                    conn.execute(statement, {"id": row.id})
            except DBAPIError:  # its column types refuse the value: nothing changed
                assert verify(scenario).ok
            else:  # taken as its text (bytes to text is an assignment cast): a changed event
                assert ("signature", row.id) in named(verify(scenario))
            return
        with engine.begin() as conn:
            conn.execute(statement, {"id": row.id})
    for processes in (False, True):
        report = verify(scenario, processes=processes)
        assert not report.ok
        assert check in checks(report), report.failures
        named_here = [f for f in report.failures if f.check == check]
        if check == "store" and "stopped" not in named_here[0].reason:
            assert named_here[0].notification_id == row.id  # the row, not only the table


# -- reading: verify's cost must not grow faster than the store ----------------------------------


@pytest.mark.parametrize("read", ["events", "log"])
def test_the_pass_reads_its_pages_in_index_order(scenario: Settings, read: str) -> None:
    """Without statistics (a store just written, not yet analysed), PostgreSQL's planner sorted
    every row after a page's key for each page: verify grew with the square of the store."""
    app = CreditLedger(scenario)
    try:
        verifier = LedgerVerifier(app.engine, app.recorder.events_table)
        with app.engine.connect() as conn:
            dialect = conn.dialect.name
            read_in_key_order(conn)
            query = (verifier.event_pages(conn.dialect) if read == "events"
                     else verifier.log_pages(conn.dialect))
            mark = "?" if dialect == "sqlite" else "%s"
            params = (0, 10**9) if read == "events" else (-1,)
            explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
            plan = " | ".join(str(row) for row in conn.exec_driver_sql(
                explain + query.format(*[mark] * len(params)), params))
    finally:
        app.close()
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
