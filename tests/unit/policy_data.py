"""The bundled policy versions, parsed, for unit tests."""

from __future__ import annotations

from typing import Any

from domain.policies import CalendarPolicy, Catalogue, GradingPolicy, PolicyBook, parse_policy
from workflows.policy_files import bundled_policies

DOCUMENTS: list[dict[str, Any]] = bundled_policies()


def document(kind: str, version: str) -> dict[str, Any]:
    return next(d for d in DOCUMENTS if d["kind"] == kind and d["version"] == version)


def catalogue(version: str = "2026.1") -> Catalogue:
    policy = parse_policy(document("catalogue", version))
    assert isinstance(policy, Catalogue)
    return policy


def grading(version: str = "2016.1") -> GradingPolicy:
    policy = parse_policy(document("grading", version))
    assert isinstance(policy, GradingPolicy)
    return policy


def calendar() -> CalendarPolicy:
    policy = parse_policy(document("calendar", "2026.11"))
    assert isinstance(policy, CalendarPolicy)
    return policy


def book() -> PolicyBook:
    result = PolicyBook()
    for doc in DOCUMENTS:
        result.add(parse_policy(doc))
    return result
