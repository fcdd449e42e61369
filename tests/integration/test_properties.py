"""Properties over any sequence of commands (hypothesis), on SQLite and PostgreSQL:
- a refused command writes nothing;
- the state replays the same from the stored events alone (a fresh reader, same JSON);
- a repair never removes a record from the ledger;
- a record under objection shows the mark until the objection is ruled;
- the store verifies clean.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import PersistenceError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from domain import clock
from domain.base import DomainError
from domain.identifiers import InvalidIdentifier, SubjectRef
from ledger import tables
from ledger.application import CreditLedger
from ledger.errors import LedgerError
from ledger.verify import LedgerVerifier
from tests.conftest import ENTERPRISE, PERSON, at, copy_of, submission
from workflows.services import CreditServices

OFFICE = "credit-office"
SUBJECTS = [ENTERPRISE, PERSON, SubjectRef("uscc", "914403001922038216")]
REFUSALS = (DomainError, LedgerError, InvalidIdentifier, LookupError, PersistenceError)
OUTCOMES = ["revoke", "correct", "complete", "end_disclosure", "reject"]

pick = st.integers(min_value=0, max_value=2)  # small: later steps act on the same cases
commands = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(["tax", "market", "court"]),
              st.integers(0, 2), st.integers(1, 4), st.booleans()),
    st.tuples(st.just("correct"), pick, st.booleans()),
    st.tuples(st.just("revoke"), pick, st.booleans()),
    *[st.tuples(st.just("object"), pick)] * 2,
    *[st.tuples(st.just("accept"), pick)] * 2,
    st.tuples(st.just("extend"), pick),
    *[st.tuples(st.just("rule"), pick, st.sampled_from(OUTCOMES))] * 2,
    st.tuples(st.just("repair"), pick),
    st.tuples(st.just("decide"), pick, st.booleans()),
    st.tuples(st.just("list"), pick, st.sampled_from(["black", "red"])),
    st.tuples(st.just("commit"), st.integers(0, 2), st.booleans()),
    # a whole objection case: raised, accepted, maybe extended, maybe ruled (each its own step)
    *[st.tuples(st.just("case"), pick, st.integers(1, 4), st.sampled_from(OUTCOMES))] * 3,
)


def expand(step: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """A "case" is the commands of one objection in order, acting on the newest objection."""
    if step[0] != "case":
        return [step]
    _, record, depth, outcome = step
    steps: list[tuple[Any, ...]] = [("object", record), ("accept", -1)]
    if depth >= 3:
        steps.append(("extend", -1))
    if depth in (2, 4):
        steps.append(("rule", -1, outcome))
    return steps


@dataclass
class World:
    services: CreditServices
    records: list[UUID] = field(default_factory=list)
    objections: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    def nth(self, items: list[Any], n: int) -> Any:
        if not items:
            raise LedgerError("nothing to act on yet")
        return items[n % len(items)]

    def run(self, command: tuple[Any, ...], day: date) -> None:
        s, name = self.services, command[0]
        if name == "submit":
            _, actor, subject, n, person_name = command
            ref = SUBJECTS[subject]
            record = replace(submission(actor, n, ref, decided=day - timedelta(days=3)),
                             subject_name=None if person_name else "主体")
            self.records.append(s.submit_record(record))
        elif name == "correct":
            rid = self.nth(self.records, command[1])
            actor = "tax" if command[2] else "market"
            s.correct_record(rid, actor=actor, reason="更正", changes={"summary": f"更正{day}"})
        elif name == "revoke":
            rid = self.nth(self.records, command[1])
            s.revoke_record(rid, actor="tax" if command[2] else "court", reason="撤销")
        elif name == "object":
            rid = self.nth(self.records, command[1])
            subject = SubjectRef(*s.record(rid).subject.split(":"))  # type: ignore[arg-type]
            self.objections.append(s.raise_objection(OFFICE, subject=subject,
                                                     target_kind="record", target_id=rid,
                                                     grounds=f"异议{len(self.objections)}"))
        elif name == "accept":
            s.accept_objection(OFFICE, self.nth(self.objections, command[1]))
        elif name == "extend":
            s.extend_objection(OFFICE, self.nth(self.objections, command[1]), "复杂")
        elif name == "rule":
            outcome = command[2]
            changes = {"summary": "核实"} if outcome in ("correct", "complete") else None
            s.rule_objection(OFFICE, self.nth(self.objections, command[1]), outcome=outcome,
                             reasoning="核实", changes=changes)
        elif name == "repair":
            self.repairs.append(s.apply_repair(OFFICE, self.nth(self.records, command[1]),
                                               evidence=["已整改"], commitment="守信"))
        elif name == "decide":
            s.decide_repair(OFFICE, self.nth(self.repairs, command[1]), approve=command[2],
                            reason="" if command[2] else "不予修复")
        elif name == "list":
            rid = self.nth(self.records, command[1])
            record = s.record(rid)
            subject = SubjectRef(*record.subject.split(":"))  # type: ignore[arg-type]
            s.add_listing(OFFICE, list_name=command[2], subject=subject, legal_basis="条例",
                          basis_records=[rid], start=day, notified_on=day - timedelta(days=7),
                          removal_conditions="履行")
        elif name == "commit":
            number = s.make_commitment(OFFICE, subject=SUBJECTS[command[1]], text="守信",
                                       context="审批")
            s.settle_commitment("market", number, kept=command[2], note="核查")


def stored(ledger: CreditLedger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.log)).scalar() or 0)


def states(services: CreditServices, as_of: date) -> dict[str, str]:
    return {ref.key: json.dumps(services.state(ref.key, as_of, at("2030-01-01T00:00:00")),
                                sort_keys=True, ensure_ascii=False)
            for ref in SUBJECTS}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(steps=st.lists(commands, min_size=4, max_size=18))
def test_any_sequence_of_commands_keeps_the_ledger_whole(backend: str, template_root: Path,
                                                         steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder, copy_of("initialised", backend,
                                                          Path(folder)) as config:
        ledger = CreditLedger(config)
        try:
            world = World(CreditServices(ledger))
            day = date(2020, 3, 1)
            # every example starts with a record about each subject, then the random steps
            opening = [("submit", actor, i, 90 + i, False)
                       for i, actor in enumerate(["tax", "market", "court"])]
            for step in [*opening, *(sub for chosen in steps for sub in expand(chosen))]:
                day += timedelta(days=23)
                before = stored(ledger)
                with clock.frozen_at(at(f"{day.isoformat()}T02:00:00")):
                    try:
                        world.run(step, day)
                    except REFUSALS:
                        assert stored(ledger) == before, f"refused {step} wrote events"
            final = day + timedelta(days=1)
            live = states(world.services, final)
            check_whole(world, final)
        finally:
            ledger.close()
        fresh = CreditLedger(config)  # a new reader: only the stored events
        try:
            assert states(CreditServices(fresh), final) == live
            report = LedgerVerifier(fresh.engine, fresh.recorder.events_table).run()
            assert report.ok, report.failures
        finally:
            fresh.close()


def check_whole(world: World, day: date) -> None:
    s = world.services
    for rid in world.records:
        # a repair (or a revocation, or a ruling) never removes a record from the ledger
        assert s.ledger.recorder.select_events(rid), rid
        subject = s.record(rid).subject
        assert any(r["id"] == str(rid) for r in s.state(subject, day)["records"])
    for number in world.objections:
        objection = s.objection(number)
        if objection.target_kind != "record":
            continue
        target = s.record(UUID(objection.target_id))
        view = next(r for r in s.state(target.subject, day)["records"]
                    if r["id"] == objection.target_id)
        if objection.status == "accepted":
            assert view["under_objection"] and number in view["objections"]
        else:
            assert number not in view["objections"]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_the_mark_stays_until_the_ruling_whatever_the_outcome(
        services: CreditServices, outcome: str) -> None:
    from tests.conftest import initialised
    initialised(services)
    with clock.frozen_at(at("2020-03-03T02:00:00")):
        rid = services.submit_record(submission("tax", 1, decided=date(2020, 3, 1)))
    with clock.frozen_at(at("2020-04-01T02:00:00")):
        number = services.raise_objection(OFFICE, subject=ENTERPRISE, target_kind="record",
                                          target_id=rid, grounds="有误")
        services.accept_objection(OFFICE, number)
    for day in range(2, 9):
        state = services.state(ENTERPRISE.key, date(2020, 4, day))
        assert state["records"][0]["under_objection"]
    with clock.frozen_at(at("2020-04-09T02:00:00")):
        changes = {"summary": "x"} if outcome in ("correct", "complete") else None
        services.rule_objection(OFFICE, number, outcome=outcome, reasoning="y", changes=changes)
    assert not services.state(ENTERPRISE.key, date(2020, 4, 9))["records"][0]["under_objection"]
