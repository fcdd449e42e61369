"""Who may do what: one table, used by the ledger before every command and printed in
docs/PERMISSIONS.md.

Roles that sign events are authority kinds: ``platform``, ``credit_office`` and ``department``.
The other roles never sign: a subject acts through the 信用临安 window, where the credit office
records what it asks for; auditors, courts, credit-service agencies and the public read.
Ownership rules (only the department owning a catalogue item submits under it; only the owning
department corrects its record outside an objection ruling) are checked by the aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.base import DomainError

SIGNING_ROLES = ("platform", "credit_office", "department")
ROLES = (*SIGNING_ROLES, "subject", "auditor", "court", "agency", "public")


@dataclass(frozen=True)
class Permission:
    roles: frozenset[str]
    description: str
    subject_via_window: bool = False  # the subject asks; the credit office records it


def _p(roles: str, description: str, via_window: bool = False) -> Permission:
    return Permission(frozenset(roles.split()), description, via_window)


COMMANDS: dict[str, Permission] = {
    "keys.register": _p("platform", "register an authority with its first key"),
    "keys.rotate": _p("platform", "issue an authority a new key"),
    "keys.revoke": _p("platform", "revoke a key"),
    "policy.publish": _p("credit_office", "publish a catalogue, grading, measures or calendar version"),
    "subject.register": _p("department credit_office", "register a subject under its identifier"),
    "subject.rename": _p("department credit_office", "record a subject's change of name"),
    "record.submit": _p("department credit_office", "submit a record under an item one owns"),
    "record.correct": _p("department credit_office", "correct or complete one's own record"),
    "record.revoke": _p("department credit_office", "revoke one's own record"),
    "objection.raise": _p("credit_office", "receive an objection at the window", True),
    "objection.accept": _p("credit_office", "accept an objection: the target is marked"),
    "objection.decline": _p("credit_office", "decline to accept an objection"),
    "objection.extend": _p("credit_office", "extend the ruling period once, to 20 working days"),
    "objection.rule": _p("credit_office", "rule: revoke, correct, complete, end disclosure, "
                                          "remove from a list or reject"),
    "objection.review": _p("credit_office", "receive a review request and rule on it", True),
    "repair.apply": _p("credit_office", "receive a credit repair application", True),
    "repair.decide": _p("credit_office", "approve or refuse a repair"),
    "list.add": _p("department credit_office", "put a subject on the black or red list"),
    "list.remove": _p("department credit_office", "remove a subject from a list"),
    "commitment.make": _p("department credit_office", "record a credit commitment", True),
    "commitment.settle": _p("department credit_office", "record whether a commitment was kept"),
}

# What the roles that never sign may do (reads), for the written matrix.
READS: dict[str, tuple[str, ...]] = {
    "look up public records (masked)": ("public", "subject", "agency", "auditor", "court",
                                        "department", "credit_office"),
    "see one's own full record": ("subject",),
    "query authorised or shared information (logged)": ("agency", "department", "credit_office"),
    "replay history to a date, compare dates": ("auditor", "credit_office"),
    "verify the whole store": ("auditor", "credit_office", "platform"),
    "verify a signed record extract offline": ("court", "auditor", "public"),
}


class NotPermitted(DomainError):
    def __init__(self, command: str, actor: str, role: str) -> None:
        allowed = ", ".join(sorted(COMMANDS[command].roles)) if command in COMMANDS else "nobody"
        super().__init__(f"{actor!r} ({role.replace('_', ' ')}) may not {command.replace('.', ' ')}: "
                         f"only {allowed}")


def check_permitted(command: str, actor: str, role: str) -> None:
    """Raise NotPermitted unless an actor of ``role`` may run ``command``."""
    permission = COMMANDS.get(command)
    if permission is None or role not in permission.roles:
        raise NotPermitted(command, actor, role)


def matrix_markdown() -> str:
    """The matrix as a Markdown table (docs/PERMISSIONS.md is generated from it)."""
    roles = ROLES
    lines = ["| command | " + " | ".join(r.replace("_", " ") for r in roles) + " |",
             "|---|" + "---|" * len(roles)]
    for name, permission in COMMANDS.items():
        cells = []
        for role in roles:
            if role in permission.roles:
                cells.append("yes")
            elif role == "subject" and permission.subject_via_window:
                cells.append("via window")
            else:
                cells.append("")
        lines.append(f"| `{name}` — {permission.description} | " + " | ".join(cells) + " |")
    for read, who in READS.items():
        lines.append(f"| {read} | " + " | ".join("yes" if r in who else "" for r in roles) + " |")
    return "\n".join(lines) + "\n"
