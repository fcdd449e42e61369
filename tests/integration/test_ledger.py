"""The ledger application on SQLite and PostgreSQL: writes, refusals, checkpoints and proofs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from domain import clock
from domain.authorities import LINAN_AUTHORITIES, AuthorityProfile, LastPlatformKey, NotByPlatform
from domain.records import InvalidRecord, NotRecordOwner
from keys.registry import NoValidKey, UnknownAuthority
from keys.store import KeyFileUnreadable, PassphraseMissing
from ledger import tables
from ledger.application import _LATEST_KEY_OR_POLICY, CreditLedger
from ledger.errors import AlreadyInitialised, AlreadyRecorded, NotInitialised
from ledger.mapper import UnsignableEvent
from ledger.settings import Settings
from ledger.storage import StoreUnavailable
from ledger.tables import stored_nodes
from ledger.verify import LedgerVerifier
from proofs import envelope, merkle
from proofs.checkpoint import parse_checkpoint
from tests.conftest import ENTERPRISE, PERSON, at, initialised, submission
from workflows.policy_files import bundled_policies
from workflows.services import CreditServices


def counts(app: CreditLedger) -> tuple[int, ...]:
    with app.engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            for t in (app.recorder.events_table, tables.log, tables.tree, tables.checkpoints)
        )


def verify_clean(app: CreditLedger) -> None:
    report = LedgerVerifier(app.engine, app.recorder.events_table).run()
    assert report.ok, report.failures
    assert report.uncheckpointed == 0


def test_the_first_event_registers_the_platform_with_its_own_key(ledger: CreditLedger) -> None:
    with clock.frozen_at(at("2020-01-01T00:00:00")):
        kid = ledger.initialise(LINAN_AUTHORITIES[0])
    assert kid == "platform-2020-1"
    assert list(ledger.registry.authorities) == ["platform"]
    assert counts(ledger) == (1, 1, 0, 1)
    with pytest.raises(AlreadyInitialised):
        ledger.initialise(LINAN_AUTHORITIES[0])
    verify_clean(ledger)


@pytest.mark.initialised
def test_records_are_signed_by_their_department_and_every_save_is_checkpointed(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-05T02:00:00")):
        ids = services.submit_records([submission("tax", i) for i in range(5)])
        services.correct_record(ids[0], actor="tax", reason="笔误", changes={"summary": "更正"})
    record = services.record(ids[0])
    assert (record.version, record.summary, record.corrections) == (2, "更正", 1)
    assert record.decision_date == date(2020, 1, 15)
    assert record.subject_key == ENTERPRISE.key
    events, logged, _, checkpoints = counts(ledger)
    # authorities, policy versions, the subject, records, the correction
    policies = len(bundled_policies())
    assert policies >= 4  # catalogue, grading, list measures and calendar at least
    assert events == logged == 5 + policies + 1 + 5 + 1
    assert checkpoints == 5 + policies + 1 + 1  # one per save
    stored = ledger.recorder.select_events(ids[0])
    sealed = envelope.decode(stored[1].state)
    assert (sealed.actor, sealed.kid) == ("tax", "tax-2020-1")
    assert sealed.recorded_at == at("2020-03-05T02:00:00")
    verify_clean(ledger)


@pytest.mark.initialised
def test_the_log_index_holds_subject_and_both_times(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-03-05T02:00:00")):
        services.submit_record(submission("market", 1, PERSON, decided=date(2020, 3, 2)))
    with ledger.engine.connect() as conn:
        row = conn.execute(select(tables.log).order_by(tables.log.c.position.desc())).first()
    assert row is not None
    assert (row.stream, row.subject) == ("CreditRecord", PERSON.key)
    assert row.recorded_at.isoformat() == "2020-03-05T02:00:00"
    assert row.effective_at.isoformat() == "2020-03-01T16:00:00"  # 2 March, China time


@pytest.mark.initialised
def test_a_batch_with_one_bad_row_writes_nothing(
        ledger: CreditLedger, services: CreditServices) -> None:
    before = counts(ledger)
    bad = replace(submission("tax", 3), summary=" ")
    with pytest.raises(InvalidRecord, match="summary must not be empty"):
        services.submit_records([submission("tax", 1), submission("tax", 2), bad])
    assert counts(ledger) == before


@pytest.mark.initialised
def test_a_batch_that_collides_with_a_stored_record_writes_nothing(
        ledger: CreditLedger, services: CreditServices) -> None:
    services.submit_record(submission("tax", 1))
    before = counts(ledger)
    with pytest.raises(AlreadyRecorded):
        services.submit_records([submission("tax", 2), submission("tax", 1)])
    assert counts(ledger) == before
    verify_clean(ledger)


@pytest.mark.initialised
def test_writing_as_an_unknown_authority_is_refused_and_writes_nothing(
        ledger: CreditLedger, services: CreditServices) -> None:
    before = counts(ledger)
    with pytest.raises(UnknownAuthority, match="'labour' is not registered"):
        services.submit_record(replace(submission("tax", 1), actor="labour"))
    assert counts(ledger) == before


def test_writing_before_initialisation_is_refused(
        ledger: CreditLedger, services: CreditServices) -> None:
    with pytest.raises(NotInitialised):
        services.submit_record(submission("tax", 1))
    assert counts(ledger) == (0, 0, 0, 0)


@pytest.mark.initialised
def test_writing_with_a_revoked_key_is_refused_and_writes_nothing(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        ledger.revoke_key("tax-2020-1", reason="lost laptop")
    before = counts(ledger)
    with clock.frozen_at(at("2020-02-02T00:00:00")), pytest.raises(
            NoValidKey, match="tax-2020-1 was revoked"):
        services.submit_record(submission("tax", 1))
    assert counts(ledger) == before
    with clock.frozen_at(at("2020-02-03T00:00:00")):
        assert ledger.rotate_key("tax") == "tax-2020-2"
        services.submit_record(submission("tax", 1))
    verify_clean(ledger)


@pytest.mark.initialised
def test_writing_with_an_expired_key_is_refused_and_writes_nothing(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-01-02T00:00:00")):
        ledger.register_authority(AuthorityProfile("labour", "department", "人社局", "Labour"),
                                  expires_at=at("2020-06-01T00:00:00"))
    with clock.frozen_at(at("2020-05-01T00:00:00")):
        services.submit_record(submission("labour", 1))
    before = counts(ledger)
    with clock.frozen_at(at("2020-07-01T00:00:00")), pytest.raises(
            NoValidKey, match="labour-2020-1 expired"):
        services.submit_record(submission("labour", 2))
    assert counts(ledger) == before
    verify_clean(ledger)


@pytest.mark.initialised
def test_a_key_rotation_is_signed_by_the_platform_key_it_keeps_valid(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2021-01-01T00:00:00")):
        new = ledger.rotate_key("platform")
    with clock.frozen_at(at("2021-01-02T00:00:00")):
        ledger.revoke_key("platform-2020-1", reason="retired")
        services.submit_record(submission("tax", 1))
    assert new == "platform-2021-1"
    with ledger.engine.connect() as conn:
        note = conn.execute(select(tables.checkpoints.c.note)
                            .order_by(tables.checkpoints.c.seq.desc())).scalar()
    assert parse_checkpoint(str(note)).key_name == "platform-2021-1"
    verify_clean(ledger)


@pytest.mark.initialised
def test_the_platform_cannot_revoke_its_only_key(
        ledger: CreditLedger, services: CreditServices) -> None:
    with pytest.raises(LastPlatformKey, match="platform-2020-1"):
        ledger.revoke_key("platform-2020-1", reason="oops")


def test_a_revocation_in_the_past_invalidates_what_the_key_signed_since(
        ledger: CreditLedger, services: CreditServices) -> None:
    initialised(services, "2020-01-01T00:00:00")
    with clock.frozen_at(at("2020-03-01T00:00:00")):
        services.submit_record(submission("tax", 1))
    with clock.frozen_at(at("2020-04-01T00:00:00")):
        ledger.rotate_key("tax")
        ledger.revoke_key("tax-2020-1", reason="compromised since February",
                          revoked_at=at("2020-02-15T00:00:00"))
    report = LedgerVerifier(ledger.engine, ledger.recorder.events_table).run()
    assert not report.ok
    assert report.first_failure is not None
    assert "key tax-2020-1 was revoked at 2020-02-15" in report.first_failure.reason


@pytest.mark.initialised
def test_only_the_owning_department_corrects_a_record(
        ledger: CreditLedger, services: CreditServices) -> None:
    record_id = services.submit_record(submission("tax", 1))
    before = counts(ledger)
    with pytest.raises(NotRecordOwner, match="only 'tax'"):
        services.correct_record(record_id, actor="market", reason="x", changes={"summary": "y"})
    with pytest.raises(InvalidRecord, match="cannot correct subject"):
        services.correct_record(record_id, actor="tax", reason="x", changes={"subject": "y"})
    assert counts(ledger) == before


@pytest.mark.initialised
def test_key_events_are_recorded_by_the_platform_only(
        ledger: CreditLedger, services: CreditServices) -> None:
    authority = ledger.authority("tax")
    with pytest.raises(NotByPlatform):
        authority.rotate_key(actor="tax", kid="tax-2020-9", public_key="x",
                             valid_from=clock.now())


def test_a_missing_passphrase_or_unreadable_key_refuses_the_write(
        settings: Settings) -> None:
    app = CreditLedger(settings)
    try:
        initialised(CreditServices(app))
    finally:
        app.close()
    no_pass = CreditLedger(replace(settings, passphrase=None))
    try:
        before = counts(no_pass)
        with pytest.raises(PassphraseMissing):
            CreditServices(no_pass).submit_record(submission("tax", 1))
        assert counts(no_pass) == before
    finally:
        no_pass.close()
    (settings.keys_dir / "tax-2020-1.key").write_bytes(b"damaged")
    app = CreditLedger(settings)
    try:
        with pytest.raises(KeyFileUnreadable, match=r"tax-2020-1\.key"):
            CreditServices(app).submit_record(submission("tax", 1))
        assert counts(app) == before
    finally:
        app.close()


def test_two_ledger_processes_writing_in_turn_keep_one_consistent_log(
        settings: Settings) -> None:
    first = CreditLedger(settings)
    second = CreditLedger(settings)
    try:
        initialised(CreditServices(first))
        for i in range(6):
            CreditServices(first if i % 2 else second).submit_records(
                [submission("tax", 10 * i + j) for j in range(3)])
        new_kid = second.rotate_key("tax")
        # The first process must sign with the key the second one just issued.
        stored = first.recorder.select_events(
            CreditServices(first).submit_record(submission("tax", 1000)))
        assert envelope.decode(stored[0].state).kid == new_kid != "tax-2020-1"
        verify_clean(first)
    finally:
        first.close()
        second.close()


@pytest.mark.initialised
def test_proofs_built_from_the_stored_tree_verify_against_the_checkpoints(
        ledger: CreditLedger, services: CreditServices) -> None:
    for i in range(7):
        services.submit_records([submission("tax", 10 * i + j) for j in range(i + 1)])
    with ledger.engine.connect() as conn:
        notes = conn.execute(select(tables.checkpoints.c.note)
                             .order_by(tables.checkpoints.c.seq)).scalars().all()
        leaves = conn.execute(select(tables.log.c.leaf_hash)
                              .order_by(tables.log.c.position)).scalars().all()
        node = stored_nodes(conn)
        cps = [parse_checkpoint(n) for n in notes]
        last = cps[-1]
        for index, leaf in enumerate(leaves):
            proof = merkle.inclusion_proof(index, last.tree_size, node)
            merkle.verify_inclusion(index, last.tree_size, bytes(leaf), proof, last.root_hash)
        for old in cps[:-1]:
            proof = merkle.consistency_proof(old.tree_size, last.tree_size, node)
            merkle.verify_consistency(old.tree_size, last.tree_size, old.root_hash,
                                      last.root_hash, proof)


@pytest.mark.initialised
def test_an_explicit_checkpoint_covers_the_log_as_it_stands(
        ledger: CreditLedger, services: CreditServices) -> None:
    with clock.frozen_at(at("2020-02-01T00:00:00") + timedelta(hours=1)):
        cp = ledger.checkpoint()
    # the authorities and the policy versions
    assert cp.tree_size == ledger.event_count() == 5 + len(bundled_policies())
    verify_clean(ledger)


def test_a_database_that_does_not_connect_is_named() -> None:
    bad = Settings(database_url="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable, match="cannot connect to postgresql"):
        CreditLedger(bad)
    with pytest.raises(StoreUnavailable, match="is not a database URL"):
        CreditLedger(Settings(database_url="not a url"))
    with pytest.raises(StoreUnavailable, match="only sqlite:/// and postgresql"):
        CreditLedger(Settings(database_url="mysql://x@localhost/y"))


@pytest.mark.initialised
def test_retired_and_revoked_private_keys_leave_the_key_folder(ledger: CreditLedger) -> None:
    store = ledger.keystore
    assert store.private_path("tax-2020-1").exists()
    with clock.frozen_at(at("2021-01-01T02:00:00")):
        new = ledger.rotate_key("tax")
    assert not store.private_path("tax-2020-1").exists()  # nothing can sign with it again
    assert store.public_path("tax-2020-1").exists()  # its public half stays, for verifiers
    assert store.private_path(new).exists()
    with clock.frozen_at(at("2021-02-01T02:00:00")):
        ledger.revoke_key("market-2020-1", reason="离职人员持有")
    assert not store.private_path("market-2020-1").exists()
    verify_clean(ledger)


def test_an_event_too_big_for_an_entry_of_the_log_s_tiles_is_not_signed(
        services: CreditServices) -> None:
    """The payload limit (FORMAT.md §11) holds for what no field rule bounds: a calendar policy
    with a very long source note is refused whole, and nothing is written."""
    initialised(services)
    ledger = services.ledger
    before = ledger.event_count()
    bundled = Path(__file__).parents[2] / "domain" / "policies" / "calendar-2016.json"
    document = json.loads(bundled.read_text(encoding="utf-8"))
    document.update(version="2099.1", source="说明" * 20_000)  # 120,000 bytes in UTF-8
    with pytest.raises(UnsignableEvent, match="at most 60000"):
        services.publish_policy("credit-office", document)
    assert ledger.event_count() == before


def test_log_and_tree_rows_the_driver_writes_read_back_as_sqlalchemy_s(ledger: CreditLedger) -> None:
    """ledger/bulk.py writes the log and the tree through the driver (COPY on PostgreSQL),
    converting every value itself: read back, each row must be what SQLAlchemy's insert of the
    same values stores, for times with and without microseconds, NULLs, text COPY would
    otherwise read as a tab, a line break or an escape, and hashes holding such bytes."""
    from uuid import uuid4

    from sqlalchemy import MetaData, Table, insert
    from sqlalchemy.orm import Session

    from ledger.bulk import BulkWriter
    awkward = b"\\\x00\t\n\r.N" + bytes(25)
    log_rows = [
        (1, 1, uuid4(), 1, "CreditRecord", "uscc:91330185MA00000000",
         at("2026-12-02T10:00:00.123456").replace(tzinfo=None), None, bytes(range(32))),
        (2, 2, uuid4(), 2, "Authority", None, at("2026-12-02T10:00:00").replace(tzinfo=None),
         at("2020-01-01T00:00:00").replace(tzinfo=None), awkward),
        (3, 3, uuid4(), 1, "Subject", "a\tb\\c\nd\\.", at("2026-12-02T10:00:01.5").replace(
            tzinfo=None), None, bytes(32)),
    ]
    node_rows = [(0, 0, awkward), (1, 0, bytes(range(100, 132)))]
    twins = MetaData()
    for table, rows in ((tables.log, log_rows), (tables.tree, node_rows)):
        twin = Table(f"{table.name}_twin", twins, *[c._copy() for c in table.columns])
        with ledger.engine.begin() as conn:
            table.create(conn, checkfirst=True)
            twin.create(conn)
            conn.execute(insert(twin), [dict(zip(table.columns.keys(), row, strict=True))
                                        for row in rows])
        writer = BulkWriter(ledger.engine.dialect.name, "unused")
        with Session(ledger.engine) as tx, tx.begin():
            if table is tables.log:
                writer.insert_log(tx, rows)
            else:
                writer.insert_nodes(tx, rows)
        with ledger.engine.connect() as conn:
            ours, theirs = (sorted(tuple(bytes(v) if isinstance(v, memoryview) else v
                                         for v in r) for r in conn.execute(select(t)))
                            for t in (table, twin))
        assert ours == theirs
        assert len(ours) == len(rows)


def test_the_chain_index_takes_two_appends_in_one_transaction(ledger: CreditLedger) -> None:
    """Two batches of links in one transaction (as an import writes them) extend the same
    chains twice: the stored index and map then equal the chains computed in memory (on
    PostgreSQL the rows pass through a staging table, which must be empty for the second)."""
    from sqlalchemy.orm import Session

    from ledger.chain_map_store import ChainMapStore
    from proofs import chain_map
    with ledger.engine.begin() as conn:
        tables.metadata.create_all(conn, tables=[tables.chains, tables.chain_map])
    keys = ["uscc:91330185MA00000000", "rid:330102199001011234", "~Authority"]
    batches = [[(key, position, bytes([position]) * 32) for position, key in enumerate(keys)],
               [(key, 3 + position, bytes([9 + position]) * 32) for position, key in
                enumerate(keys[:2])]]
    store, expected = ChainMapStore(ledger.engine.dialect.name), chain_map.ChainMap()
    with Session(ledger.engine) as tx, tx.begin():
        for batch in batches:
            root = store.append(tx, batch)
            for key, _, leaf in batch:
                expected.append(key, leaf)
    assert root == expected.root()
    with ledger.engine.connect() as conn:
        assert ChainMapStore(ledger.engine.dialect.name).root(conn) == expected.root()
        for key in keys:
            length, head, _ = store.chain(conn, key)
            assert (length, head) == expected.chain(key)


@pytest.mark.initialised
def test_the_probe_for_new_keys_and_policies_reads_the_stream_index_only(
        ledger: CreditLedger, services: CreditServices) -> None:
    """Every save first asks whether a key or policy event is new. Key and policy events are at
    the start of the log: PostgreSQL without statistics (a store just imported) answered
    ``stream IN (…)`` by reading the whole log backwards from its end (333 ms at 1,200,000
    events, twice a batch)."""
    with clock.frozen_at(at("2020-02-01T00:00:00")):
        services.submit_records([submission("tax", n) for n in range(1, 301)])
    probe = str(_LATEST_KEY_OR_POLICY)
    with ledger.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " | ".join(str(row) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + probe))
            assert plan.count("INDEX ledger_log_stream_idx (stream=?)") == 2, plan
        else:
            plan = " | ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN ANALYZE " + probe))
            assert "Rows Removed by Filter" not in plan, plan
            assert plan.count("using ledger_log_stream_idx") == 2, plan
        latest = conn.exec_driver_sql(probe).scalar()
        keys_and_policies = conn.execute(select(func.max(tables.log.c.position)).where(
            tables.log.c.stream.in_(["Authority", "PolicyVersion"]))).scalar()
    assert latest == keys_and_policies


def _key_chains_as_before(engine: Any) -> None:
    """``ledger_chains`` as earlier versions made it: keyed by chain, an index of buckets."""
    from sqlalchemy import inspect, text
    blob = "BLOB" if engine.dialect.name == "sqlite" else "BYTEA"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE ledger_chains_old (chain VARCHAR(80) NOT NULL PRIMARY "
                          f"KEY, key_hash {blob} NOT NULL, bucket INTEGER NOT NULL, length BIGINT "
                          f"NOT NULL, head {blob} NOT NULL, position BIGINT NOT NULL)"))
        conn.execute(text("INSERT INTO ledger_chains_old SELECT chain, key_hash, bucket, length, "
                          "head, position FROM ledger_chains"))
        conn.execute(text("DROP TABLE ledger_chains"))
        conn.execute(text("ALTER TABLE ledger_chains_old RENAME TO ledger_chains"))
        conn.execute(text("CREATE INDEX ledger_chains_bucket_idx ON ledger_chains (bucket)"))
    assert inspect(engine).get_pk_constraint("ledger_chains")["constrained_columns"] == ["chain"]


@pytest.mark.initialised
def test_two_processes_upgrading_the_chain_index_at_once_copy_it_once(
        ledger: CreditLedger, services: CreditServices) -> None:
    """Two writers opening an old store at the same moment: one upgrades ``ledger_chains``, the
    other waits for its lock, looks again and leaves it; the rows are the ones there were."""
    import threading

    from sqlalchemy import create_engine
    services.submit_records([submission("tax", n) for n in range(1, 4)])
    engine = ledger.engine
    with engine.connect() as conn:
        before = sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                        for row in conn.execute(select(tables.chains)))
    ledger.close()
    _key_chains_as_before(engine)
    engines = [create_engine(engine.url) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: list[bool | BaseException] = []

    def upgrade(which: Any) -> None:
        start.wait()
        try:
            outcomes.append(tables.upgrade_chains_table(which))
        except BaseException as exc:  # reported below
            outcomes.append(exc)

    threads = [threading.Thread(target=upgrade, args=(e,)) for e in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes, key=str) == [False, True], outcomes
        with engines[0].connect() as conn:
            after = sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                           for row in conn.execute(select(tables.chains)))
        assert after == before
    finally:
        for each in engines:
            each.dispose()


@pytest.mark.initialised
def test_a_chain_index_keyed_by_chain_alone_is_upgraded_before_the_next_write(
        ledger: CreditLedger, services: CreditServices, settings: Settings) -> None:
    """Stores made before ``ledger_chains`` was keyed ``(bucket, chain)`` (keyed by chain, with
    an index of buckets) get the table as defined now before a process's first write, rows as
    they were; the writes go on, and the store verifies."""
    from sqlalchemy import inspect
    services.submit_records([submission("tax", n) for n in range(1, 4)])
    engine = ledger.engine
    with engine.connect() as conn:
        before = {row[0]: tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                  for row in conn.execute(select(tables.chains))}
    ledger.close()
    _key_chains_as_before(engine)
    reopened = CreditLedger(replace(settings, create=False))
    try:
        CreditServices(reopened).submit_records([submission("tax", n) for n in range(4, 6)])
        inspector = inspect(reopened.engine)
        assert inspector.get_pk_constraint("ledger_chains")["constrained_columns"] == [
            "bucket", "chain"]
        assert "ledger_chains_bucket_idx" not in {i["name"] for i in
                                                  inspector.get_indexes("ledger_chains")}
        if engine.dialect.name == "sqlite":  # the rows are the key's b-tree
            with reopened.engine.connect() as conn:
                assert "WITHOUT ROWID" in conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'ledger_chains'").scalar_one()
        with reopened.engine.connect() as conn:
            after = {row[0]: tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                     for row in conn.execute(select(tables.chains))}
        assert set(before) <= set(after)
        # the chains the new records did not extend are as they were (the key registry's)
        unchanged = [chain for chain in before if before[chain][5] == after[chain][5]]
        assert unchanged and all(after[chain] == before[chain] for chain in unchanged)
        report = LedgerVerifier(reopened.engine, tables.events_table("credit_events")).run()
        assert report.ok, report.failures
        assert tables.upgrade_chains_table(reopened.engine) is False  # once
    finally:
        reopened.close()
