"""Reading the read models: what the lookup window and the office's queues show."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from domain.identifiers import mask_person_name, mask_subject_key


def search_subjects(engine: Engine, query: str, limit: int = 20) -> list[dict[str, Any]]:
    """Subjects whose name contains ``query`` or whose identifier starts with it (masked)."""
    needle = query.strip()
    code = needle.split(":", 1)[-1].upper()
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT subject, kind, name, grade, points, black_listed, red_listed, records, "
            "public_records, open_objections FROM proj_subjects "
            "WHERE name LIKE :name OR subject LIKE :uscc OR subject LIKE :rid "
            "ORDER BY subject LIMIT :limit"),
            {"name": f"%{needle}%", "uscc": f"uscc:{code}%", "rid": f"rid:{code}%",
             "limit": limit}).mappings().all()
    return [{**row, "subject": mask_subject_key(row["subject"]),
             "name": mask_person_name(row["name"] or "") if row["kind"] == "natural_person"
             else row["name"],
             "black_listed": bool(row["black_listed"]), "red_listed": bool(row["red_listed"])}
            for row in rows]
