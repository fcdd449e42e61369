"""What each reader sees of a subject's state: the disclosure rules, as pure functions.

- The **public** sees an enterprise's public file: the records the disclosure rules make public
  on the day (``public``: the item is public, its period has not ended, it is not repaired,
  revoked or hidden as minor), its list memberships, commitments and grade; not objections,
  repairs or shared records. A natural person's file is never public (DOMAIN.md: people's
  records are shared and queried, never disclosed).
- A **subject** sees its own whole file.
- **Authorised readers** (credit office, departments, courts, agencies, auditors) see the whole
  file, stating a purpose; the read is logged (``domain/queries.py``).
"""

from __future__ import annotations

from typing import Any

from domain.base import DomainError
from domain.identifiers import mask_subject_key

PUBLIC = "public"


class NotPublic(DomainError):
    def __init__(self, subject: str) -> None:
        super().__init__(f"{mask_subject_key(subject)} is a natural person: their file is never "
                         "public; an authorised body reads it with --as and --purpose")


def is_person(subject: str) -> bool:
    return subject.startswith("rid:")


def public_view(state: dict[str, Any]) -> dict[str, Any]:
    """The part of a state the public may see (NotPublic for a natural person)."""
    if is_person(state["subject"]):
        raise NotPublic(state["subject"])
    return {**state, "view": PUBLIC,
            "records": [r for r in state["records"] if r["public"]],
            "objections": [], "repairs": []}


def full_view(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "view": "full"}


def returned_summary(state: dict[str, Any]) -> str:
    """What a logged read gave the reader, without the content: counts and the state's day."""
    return (f"state as of {state['as_of']} known at {state['known_at']}: "
            f"{len(state['records'])} records, {len(state['listings'])} listings, "
            f"{len(state['objections'])} objections, {len(state['repairs'])} repairs, "
            f"grade {state['grade']['grade']}")


class NotWhollyPublic(DomainError):
    """A signed extract carries every event of a file; the public may take it only when the
    public window shows all of them."""

    def __init__(self) -> None:
        super().__init__("this file holds records or applications that are no longer public: "
                         "its signed report is given to the subject itself and to authorised "
                         "bodies only")


def wholly_public(state: dict[str, Any]) -> bool:
    """Whether the public sees everything the subject's signed file holds: an enterprise with
    every record public and no objection or repair application."""
    return (not is_person(state["subject"]) and not state["objections"]
            and not state["repairs"] and all(r["public"] for r in state["records"]))
