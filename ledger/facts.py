"""Stored events as the reducer's facts: decoded envelopes and payloads, in log order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from domain.state import Fact, kind_of
from ledger import envelope, tables


def fact_from_row(position: int, nid: int, oid: Any, version: int, topic: str,
                  state: bytes) -> Fact:
    """A Fact from an events-table row joined to its log position."""
    sealed = envelope.decode(bytes(state))
    return Fact(position=int(position), aggregate_id=str(oid), version=int(version),
                kind=kind_of(topic), actor=sealed.actor, recorded_at=sealed.recorded_at,
                data=envelope.decode_payload(sealed.payload))


def read_facts(connection: Connection, events: Table, subject: str) -> list[Fact]:
    """Every event about ``subject``, through the subject index (no scan of the log)."""
    log = tables.log
    rows = connection.execute(
        select(log.c.position, events.c.id, events.c.originator_id, events.c.originator_version,
               events.c.topic, events.c.state)
        .join(events, events.c.id == log.c.notification_id)
        .where(log.c.subject == subject)
        .order_by(log.c.position)
    )
    return [fact_from_row(*row) for row in rows]
