"""One home for each event's schema: the aggregates' events, the mapper and the reducer agree."""

from __future__ import annotations

from collections.abc import Iterator

from domain import state
from domain.base import LedgerAggregate
from domain.events import CLASS_VERSION, SCHEMAS, upcast
from workflows import checks, reads, tokens  # noqa: F401 - imports every aggregate module

# What eventsourcing adds to every event (kept by the envelope, the store, or the library).
ENVELOPE_FIELDS = {"originator_id", "originator_id_type", "originator_version", "timestamp",
                   "originator_topic"}


def aggregate_events() -> Iterator[tuple[str, type]]:
    def subclasses(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for aggregate in subclasses(LedgerAggregate):
        for name, value in vars(aggregate).items():
            if (isinstance(value, type) and issubclass(value, LedgerAggregate.Event)
                    and name not in ("Event", "Created")):
                yield f"{aggregate.__name__}.{name}", value


def fields_of(event_class: type) -> list[str]:
    found: list[str] = []
    for cls in reversed(event_class.__mro__):
        for name in getattr(cls, "__annotations__", {}):
            if name not in found and name not in ENVELOPE_FIELDS:
                found.append(name)
    return found


def test_every_aggregate_event_has_exactly_its_schema() -> None:
    defined = dict(aggregate_events())
    assert set(defined) == set(SCHEMAS), set(defined) ^ set(SCHEMAS)
    for kind, event_class in defined.items():
        schema = SCHEMAS[kind]
        assert tuple(fields_of(event_class)) == schema.fields, kind
        assert getattr(event_class, "class_version", 1) == schema.version, kind
        for number, upcaster in enumerate(schema.upcasters, start=1):
            assert getattr(event_class, f"upcast_v{number}_v{number + 1}") is upcaster, kind


def test_the_reducer_reads_only_events_that_have_a_schema() -> None:
    assert set(state._HANDLERS) <= set(SCHEMAS)


def test_upcasting_a_version_1_correction_gives_every_current_field() -> None:
    stored = {"actor": "tax", "reason": "笔误", "changes": {}, "supersedes": 1}
    current = upcast("CreditRecord.Corrected", dict(stored))
    assert set(current) == set(SCHEMAS["CreditRecord.Corrected"].fields)
    assert current["objection"] is None
    written_now = {**current, "objection": "o-1", CLASS_VERSION: 2}
    assert upcast("CreditRecord.Corrected", dict(written_now))["objection"] == "o-1"
