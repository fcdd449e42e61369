"""The city's public credit grade: a pure function of the subject's state and the grading policy in
force on the day, with the points explained line by line. Standard library only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from domain.policies import GRADES, GradingPolicy, PolicyBook


def grade(records: Sequence[dict[str, Any]], commitments: Sequence[dict[str, Any]],
          listings: Sequence[dict[str, Any]], book: PolicyBook, as_of: date) -> dict[str, Any]:
    policy = book.in_force("grading", as_of)
    if not isinstance(policy, GradingPolicy):
        return {"grade": None, "points": None, "policy": None,
                "explanation": [{"points": 0, "reason": "no grading policy in force"}],
                "override": None}
    points = policy.base_points
    lines: list[dict[str, Any]] = [{"points": policy.base_points, "reason": "base points"}]
    for record in records:
        if not counted(record, policy):
            continue
        delta = record_points(record, policy)
        if delta:
            points += delta
            lines.append({"points": delta, "reason": (
                f"{record['item_code']} {record['decision_number']} "
                f"({record['severity'] or record['polarity']}, {record['decision_date']})")})
    for commitment in commitments:
        outcome = commitment.get("outcome")
        if outcome in ("kept", "broken"):
            delta = policy.commitment_points[outcome]
            points += delta
            lines.append({"points": delta,
                          "reason": f"commitment {commitment['number']} {outcome}"})
    points = max(0, min(points, policy.max_points))
    band = next(b.grade for b in policy.bands
                if b.min_points is None or points >= b.min_points)
    result, override = apply_overrides(band, listings, policy)
    return {"grade": result, "points": points, "policy": policy.version,
            "explanation": lines, "override": override}


def counted(record: dict[str, Any], policy: GradingPolicy) -> bool:
    """A record counts while it is in force (not revoked, repaired or past its disclosure)."""
    if record["status"] != "in_force":
        return False
    return policy.counts_under_objection or not record["under_objection"]


def record_points(record: dict[str, Any], policy: GradingPolicy) -> int:
    if record["item_code"] in policy.item_points:
        return policy.item_points[record["item_code"]]
    if record["polarity"] == "negative" and record["severity"] in policy.negative_points:
        return policy.negative_points[record["severity"]]
    if record["polarity"] == "positive":
        return policy.positive_points
    return 0


def apply_overrides(band: str, listings: Sequence[dict[str, Any]],
                    policy: GradingPolicy) -> tuple[str, str | None]:
    """List overrides: a fixed grade (black list → D) or a floor (red list → at least B)."""
    active = {x["list"] for x in listings if x["status"] == "active"}
    for name in ("black", "red"):
        rule = policy.list_overrides.get(name)
        if name not in active or not rule:
            continue
        if "grade" in rule:
            return rule["grade"], f"on the {name} list: grade {rule['grade']}"
        floor = rule["at_least"]
        if GRADES.index(band) > GRADES.index(floor):
            return floor, f"on the {name} list: at least {floor}"
    return band, None
