"""Credit subjects: legal persons and other organisations (unified social credit code) and natural
persons (resident ID number), with their names over time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event
from eventsourcing.utils import get_topic

from domain import validation
from domain.base import DomainError, LedgerAggregate
from domain.events import apply_schemas
from domain.identifiers import SubjectRef

KINDS = ("legal_person", "natural_person", "other_organisation")


class InvalidSubject(DomainError):
    pass


@lru_cache(maxsize=1 << 16)  # an import names each subject in every batch it appears in
def subject_id(subject_key: str) -> UUID:
    """One Subject aggregate per identifier."""
    return uuid5(NAMESPACE_URL, f"credit-ledger:subject:{subject_key}")


def registration_fields(actor: str, ref: SubjectRef, name: str, kind: str | None
                        ) -> dict[str, Any]:
    """The checked attributes of a Registered event."""
    chosen = kind or default_kind(ref)
    if chosen not in KINDS:
        raise InvalidSubject(f"{chosen!r} is not a subject kind ({', '.join(KINDS)})")
    if (chosen == "natural_person") != ref.is_person:
        raise InvalidSubject(
            f"a {chosen.replace('_', ' ')} is identified by "
            f"{'a resident ID number' if chosen == 'natural_person' else 'a unified social credit code'}"
        )
    check_name(name)
    return {"actor": actor, "subject": ref.key, "kind": chosen, "name": name.strip()}


def default_kind(ref: SubjectRef) -> str:
    """People by resident ID; organisations by code: individual businesses (92) and other
    non-legal-person organisations (the registering department's 'Y' and entity type '9')
    are other organisations, the rest legal persons."""
    if ref.is_person:
        return "natural_person"
    if ref.code[:2] == "92" or ref.code[0] == "Y":
        return "other_organisation"
    return "legal_person"


class Subject(LedgerAggregate):
    """A credit subject and its name; its records, objections, repairs and listings refer to it."""

    @staticmethod
    def create_id(*, subject: str, **_: Any) -> UUID:
        return subject_id(subject)

    @event("Registered")
    def __init__(self, *, actor: str, subject: str, kind: str, name: str) -> None:
        self.subject = subject
        self.kind = kind
        self.name = name

    @classmethod
    def register(cls, *, actor: str, ref: SubjectRef, name: str, kind: str | None = None
                 ) -> Subject:
        """Register a subject under its identifier (by a department or the credit office)."""
        return cls(**registration_fields(actor, ref, name, kind))

    @classmethod
    def registration(cls, *, actor: str, ref: SubjectRef, name: str, kind: str | None = None
                     ) -> LedgerAggregate.Event:
        """The Registered event of a new subject, by the same rules as ``register``, without
        building the aggregate: a batch of records registers the subjects it names, and the event
        is all that is stored (a test keeps the two paths identical)."""
        fields = registration_fields(actor, ref, name, kind)
        registered: type[LedgerAggregate.Event] = getattr(cls, "Registered")  # noqa: B009
        return registered(  # type: ignore[call-arg]
            originator_id=subject_id(ref.key),
            originator_version=cls.INITIAL_VERSION,
            timestamp=registered.create_timestamp(),
            originator_topic=_SUBJECT_TOPIC,
            **fields,
        )

    @property
    def subject_key(self) -> str:
        return self.subject

    def rename(self, *, actor: str, name: str, reason: str) -> None:
        """A change of name (for example after re-registration)."""
        check_name(name)
        if name.strip() == self.name:
            raise InvalidSubject(f"the subject is already named {name.strip()!r}")
        if not reason.strip():
            raise InvalidSubject("a change of name needs its reason")
        self._renamed(actor=actor, name=name.strip(), reason=reason.strip())

    @event("Renamed")
    def _renamed(self, *, actor: str, name: str, reason: str) -> None:
        self.name = name


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidSubject("a subject needs a name")
    if len(name) > 200:
        raise InvalidSubject("a subject's name has at most 200 characters")
    validation.check_text("the subject's name", name, limit=200)


_SUBJECT_TOPIC = get_topic(Subject)

apply_schemas(Subject)
