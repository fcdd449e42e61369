"""Reading the read models: what the lookup window shows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from domain.identifiers import mask_person_name, mask_subject_key

_COLUMNS = ("subject, kind, name, grade, points, black_listed, red_listed, records, "
            "public_records, open_objections")


def like_pattern(fragment: str) -> str:
    """``%fragment%`` with LIKE's own characters taken literally (ESCAPE '\\')."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_subjects(engine: Engine, query: str, people: bool = False,
                    limit: int = 20) -> list[dict[str, Any]]:
    """Enterprises whose name contains ``query`` or whose full code it is; with ``people``,
    the one subject whose full key ``query`` is (the caller has checked who may ask)."""
    needle = query.strip()
    with engine.connect() as conn:
        if people:
            rows = conn.execute(text(
                f"SELECT {_COLUMNS} FROM proj_subjects WHERE subject = :key"),
                {"key": needle}).mappings().all()
        else:
            code = needle.removeprefix("uscc:").upper()
            rows = conn.execute(text(
                f"SELECT {_COLUMNS} FROM proj_subjects "
                "WHERE subject LIKE 'uscc:%' "
                "AND (name LIKE :name ESCAPE '\\' OR subject = :uscc) "
                "ORDER BY subject LIMIT :limit"),
                {"name": like_pattern(needle), "uscc": f"uscc:{code}",
                 "limit": limit}).mappings().all()
    return [{**row, "subject": mask_subject_key(row["subject"]),
             "name": mask_person_name(row["name"] or "") if row["kind"] == "natural_person"
             else row["name"],
             "black_listed": bool(row["black_listed"]), "red_listed": bool(row["red_listed"])}
            for row in rows]
