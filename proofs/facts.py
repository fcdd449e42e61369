"""A stored event as the reducer's Fact: its envelope decoded, its payload parsed and brought to
its current version by the same upcasters the aggregates use (``domain.events``).

Standard library only (with ``domain.state``): the offline extract verifier builds facts with it.
"""

from __future__ import annotations

from typing import Any

from domain.events import upcast
from domain.state import Fact, kind_of
from proofs import envelope
from proofs.checks import oid_text


def fact_from_row(position: int, nid: int, oid: Any, version: int, topic: str,
                  state: bytes) -> Fact:
    """A Fact from an events-table row joined to its log position."""
    actor, at, kid, payload = envelope.header_fields(bytes(state))
    kind = kind_of(topic)
    return Fact(position, oid_text(oid), version, kind, actor, envelope.parse_instant(at),
                upcast(kind, envelope.decode_payload(payload)), nid, kid)
