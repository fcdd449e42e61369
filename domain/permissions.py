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
    "checkpoint.sign": _p("platform", "sign a checkpoint of the whole log now"),
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
    # reads (docs/CREDIT.md, "Who sees what"): every one but the public one is logged
    "read.public": _p("platform credit_office department subject auditor court agency public",
                      "see an enterprise's public file on any day; find enterprises by name or "
                      "full code (never a natural person)"),
    "read.own": _p("subject", "see one's own full file, the shared records included (logged)"),
    "read.file": _p("credit_office department auditor court agency",
                    "see a subject's full file, a person's by the full ID number only, stating "
                    "the purpose (logged)"),
    "read.known_at": _p("credit_office auditor", "replay a file as the ledger knew it at an "
                                                 "earlier time (logged)"),
    "read.queries": _p("credit_office auditor", "read the query log"),
    "extract.issue": _p("credit_office court auditor subject",
                        "issue a signed extract of a subject's whole history (a subject: its "
                        "own; logged)"),
    "check.make": _p("department credit_office agency",
                     "check a subject's credit before deciding a matter (procurement, bidding, "
                     "land, subsidy, honour, licence, inspection); the check and its answer "
                     "are recorded, and a signed receipt returned"),
    "token.issue": _p("credit_office", "issue an API token for an authority, a reader or a "
                                       "subject (only its digest is kept)"),
    "token.revoke": _p("credit_office", "revoke an API token"),
    "extract.public": _p("public", "take the signed report of an enterprise whose whole file "
                                   "is public: nothing in its signed history that the public "
                                   "window hides (logged)"),
}

# What is done outside the ledger's commands, for the written matrix.
READS: dict[str, tuple[str, ...]] = {
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
