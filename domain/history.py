"""What changed between two days: a pure comparison of two subject states, and the day each
event takes effect. Standard library only."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain import events
from domain.state import Fact

RECORD_FIELDS = ("status", "public", "shared", "under_objection", "corrected", "repaired",
                 "disclosure_ended", "revoked", "summary", "decision_number", "decision_date",
                 "details")


def effective_day(fact: Fact) -> date:
    """The day an event takes effect: the act's own date (its schema names the field), else,
    for registrations and events written before they carried one, the day it was recorded."""
    return events.effective_day(fact.kind, fact.data) or fact.recorded_on


def related_aggregates(facts: list[Fact]) -> dict[str, set[str]]:
    """For each record or listing, the aggregates that act on it (itself, its objections and
    repair applications), read from their first events."""
    related: dict[str, set[str]] = {}
    for f in facts:
        target = (f.data.get("target_id") if f.kind == "Objection.Raised"
                  else f.data.get("record_id") if f.kind == "RepairApplication.Applied" else None)
        if isinstance(target, str):
            related.setdefault(target, {target}).add(f.aggregate_id)
    return related


def attribute(changes: list[dict[str, Any]], window: list[Fact],
              related: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Each change with the signed events (notification ids) that made it: those in the window
    on its own aggregate or on one acting on it; a change of grade or name, every event that
    changed something else."""
    by_aggregate: dict[str, list[int]] = {}
    for f in window:
        if f.notification_id is not None:
            by_aggregate.setdefault(f.aggregate_id, []).append(f.notification_id)
    out = []
    for change in changes:
        ids: list[int] = []
        if change["id"] is not None:
            for aggregate in sorted(related.get(change["id"], {change["id"]})):
                ids += by_aggregate.get(aggregate, [])
        out.append({**change, "events": sorted(set(ids))})
    caused = sorted({i for c in out for i in c["events"]})
    return [{**c, "events": caused} if c["id"] is None else c for c in out]


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def diff_states(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes from ``before`` to ``after``, each {what, id, field, from, to}."""
    changes: list[dict[str, Any]] = []
    g1, g2 = before["grade"], after["grade"]
    for field in ("grade", "points", "policy", "override"):
        if g1.get(field) != g2.get(field):
            changes.append({"what": "grade", "id": None, "field": field,
                            "from": g1.get(field), "to": g2.get(field)})
    if before.get("name") != after.get("name"):
        changes.append({"what": "subject", "id": None, "field": "name",
                        "from": before.get("name"), "to": after.get("name")})
    sections = {"records": RECORD_FIELDS,
                "listings": ("status", "removed_on", "ends_on"),
                "objections": ("status", "outcome", "deadline", "overdue", "review"),
                "repairs": ("status",), "commitments": ("outcome",)}
    for section, fields in sections.items():
        old, new = _by_id(before[section]), _by_id(after[section])
        what = section[:-1]
        for item_id in sorted(set(old) | set(new)):
            if item_id not in old:
                changes.append({"what": what, "id": item_id, "field": None, "from": None,
                                "to": "added"})
            elif item_id not in new:
                changes.append({"what": what, "id": item_id, "field": None, "from": "present",
                                "to": "gone"})
            else:
                for field in fields:
                    if old[item_id].get(field) != new[item_id].get(field):
                        changes.append({"what": what, "id": item_id, "field": field,
                                        "from": old[item_id].get(field),
                                        "to": new[item_id].get(field)})
    return changes


def changed_by_time(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes no event made: disclosure or listing periods that ended in between."""
    start, end = date.fromisoformat(before["as_of"]), date.fromisoformat(after["as_of"])
    found = []
    for record in after["records"]:
        for field, label in (("disclosure_until", "public display ended (maximum period)"),
                             ("shared_until", "sharing ended (retention period)")):
            day = record.get(field)
            if day and start < date.fromisoformat(day) <= end:
                found.append({"on": day, "what": "record", "id": record["id"], "change": label})
    for listing in after["listings"]:
        if listing["status"] == "expired" and start < date.fromisoformat(listing["planned_end"]) <= end:
            found.append({"on": listing["planned_end"], "what": "listing", "id": listing["id"],
                          "change": "listing expired at its planned end"})
    for objection in after["objections"]:
        deadline = objection.get("deadline")
        if objection["overdue"] and deadline and start <= date.fromisoformat(deadline) < end:
            found.append({"on": deadline, "what": "objection", "id": objection["id"],
                          "change": "ruling deadline passed"})
    return sorted(found, key=lambda c: (c["on"], c["what"], c["id"]))
