"""Publishing a policy version (catalogue, grading, list measures, calendar) into the ledger."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.base import LedgerAggregate
from domain.events import apply_schemas
from domain.policies import parse_policy


def policy_id(kind: str, version: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"credit-ledger:policy:{kind}:{version}")


class PolicyVersion(LedgerAggregate):
    """One published version of one policy; the document is stored whole, as published."""

    @staticmethod
    def create_id(*, kind: str, version: str, **_: Any) -> UUID:
        return policy_id(kind, version)

    @event("Published")
    def __init__(self, *, actor: str, kind: str, version: str, effective_from: date,
                 document: dict[str, Any]) -> None:
        self.kind = kind
        self.policy_version = version  # not "version": that is the aggregate's own
        self.effective_from = effective_from

    @classmethod
    def publish(cls, *, actor: str, document: dict[str, Any]) -> PolicyVersion:
        """Validate a policy document (PolicyError names the field at fault) and publish it."""
        policy = parse_policy(document)
        return cls(actor=actor, kind=policy.kind, version=policy.version,
                   effective_from=policy.effective_from, document=dict(document))


apply_schemas(PolicyVersion)
