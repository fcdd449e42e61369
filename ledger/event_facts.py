"""A stored event as the reducer's Fact: its envelope decoded, its payload parsed.

Standard library only (with ``domain.state``): the offline extract verifier builds facts with it.
"""

from __future__ import annotations

from typing import Any

from domain.state import Fact, kind_of
from ledger import envelope
from ledger.verify_checks import oid_text


def fact_from_row(position: int, nid: int, oid: Any, version: int, topic: str,
                  state: bytes) -> Fact:
    """A Fact from an events-table row joined to its log position."""
    actor, at, kid, payload = envelope.header_fields(bytes(state))
    return Fact(position, oid_text(oid), version, kind_of(topic), actor,
                envelope.parse_instant(at), envelope.decode_payload(payload), nid, kid)
