"""Events stored by earlier versions must stay readable and verifiable (tests/data/events)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    StoredEvent,
    UUIDAsHex,
)

from domain.records import CreditRecord
from keys.signer import verify
from ledger import envelope
from ledger.mapper import DateAsISO, SigningMapper

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
