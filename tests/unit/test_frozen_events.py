"""Events stored by earlier versions must stay readable and verifiable (tests/data/events)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    StoredEvent,
    UUIDAsHex,
)

from domain.events import CLASS_VERSION
from domain.records import CreditRecord
from domain.state import Fact, subject_state
from keys.signer import verify
from ledger.mapper import DateAsISO, SigningMapper
from proofs import envelope
from proofs.facts import fact_from_row
from tests.unit.policy_data import DOCUMENTS

FIXTURE = Path(__file__).parent.parent / "data" / "events" / "credit_record_v1.json"


def stored_events() -> tuple[bytes, list[StoredEvent]]:
    data = json.loads(FIXTURE.read_text())
    events = [StoredEvent(originator_id=UUID(e["originator_id"]),
                          originator_version=e["originator_version"], topic=e["topic"],
                          state=base64.b64decode(e["state_base64"])) for e in data["events"]]
    return base64.b64decode(data["public_key_base64"]), events


def mapper() -> SigningMapper:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    return SigningMapper(transcoder)


def test_frozen_events_still_verify_under_the_documented_signed_bytes() -> None:
    public_key, events = stored_events()
    for stored in events:
        sealed = envelope.decode(stored.state)
        verify(public_key, sealed.signature, envelope.signed_bytes(
            stored.originator_id, stored.originator_version, stored.topic, sealed.actor,
            sealed.at, sealed.kid, sealed.payload))


def test_frozen_events_still_replay_into_the_same_record() -> None:
    _, events = stored_events()
    domain_events = [mapper().to_domain_event(e) for e in events]
    # The correction was stored as class version 1, before "objection" existed: upcast.
    assert vars(domain_events[1])["objection"] is None
    record = None
    for event in domain_events:
        record = event.mutate(record)  # type: ignore[attr-defined]
    assert isinstance(record, CreditRecord)
    assert record.version == 2
    assert record.summary == "逾期未申报增值税"
    assert record.decision_date == date(2026, 11, 21)
    assert record.department == "tax"
    assert record.modified_on == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_frozen_events_replay_through_the_reducer_as_the_aggregate_reads_them() -> None:
    # The reducer (and a court's verifier) reads stored events through proofs.facts, which
    # upcasts by the same schema as the aggregate: the version 1 correction gains "objection".
    _, events = stored_events()
    facts = [fact_from_row(position, position + 1, e.originator_id, e.originator_version,
                           e.topic, e.state) for position, e in enumerate(events)]
    assert facts[1].kind == "CreditRecord.Corrected"
    assert facts[1].data["objection"] is None
    assert CLASS_VERSION not in facts[1].data
    policy_facts = [Fact(100 + i, f"policy-{i}", 1, "PolicyVersion.Published", "credit-office",
                         datetime(2016, 1, 1, tzinfo=UTC), {"document": document})
                    for i, document in enumerate(DOCUMENTS)]
    state = subject_state(str(facts[0].data["subject"]), facts, policy_facts,
                          date(2026, 11, 28), datetime(2026, 11, 28, tzinfo=UTC))
    (record,) = state["records"]
    aggregate = None
    for event in [mapper().to_domain_event(e) for e in events]:
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    assert isinstance(aggregate, CreditRecord)
    assert record["summary"] == aggregate.summary == "逾期未申报增值税"
    assert record["decision_date"] == aggregate.decision_date.isoformat() == "2026-11-21"
    assert record["corrected"] is True and record["corrections"] == 1


def test_an_unknown_stored_class_version_is_refused_not_misread() -> None:
    _, events = stored_events()
    state = events[1].state.replace(b'"supersedes":1}', b'"supersedes":1,"class_version":7}')
    with pytest.raises(ValueError, match="stored class version 7"):
        fact_from_row(1, 2, events[1].originator_id, 2, events[1].topic, state)
