"""What a verifier can find wrong: one vocabulary for ``credit verify`` and the extract verifier.

As sigstore-python does, input that cannot be parsed (``MalformedInput``) is kept apart from data
that parses but fails a check (``InauthenticData``). Every failure is a class with a stable
``check`` name, the name machines read (``--json`` prints it); its message is the fact that
failed ("signature does not match key tax-2026-1"), for people. Where a failure is about one
stored event, it also names the event's notification id, aggregate and version.

| check             | malformed input              | inauthentic data                      |
|-------------------|------------------------------|---------------------------------------|
| document          | MalformedDocument            |                                       |
| extract-signature |                              | ExtractSignatureInvalid               |
| payload           | MalformedPayload             |                                       |
| order             |                              | EventsOutOfOrder                      |
| registry          | MalformedKeyEvent            | RegistryInvalid                       |
| issuer            |                              | IssuerInvalid                         |
| checkpoint        | MalformedCheckpoint          | CheckpointInvalid                     |
| consistency       |                              | CheckpointInconsistent                |
| store             | MalformedStore               |                                       |
| envelope          | MalformedEnvelope            |                                       |
| key               |                              | KeyNotValid                           |
| signature         |                              | SignatureInvalid                      |
| inclusion         |                              | InclusionInvalid                      |
| membership        |                              | MembershipInvalid                     |
| completeness      |                              | ChainIncomplete                       |
| state             |                              | StateMismatch                         |
| log               |                              | LogMismatch                           |
| version           |                              | VersionsBroken                        |
| chains            |                              | ChainIndexMismatch                    |
| time              |                              | TimeWentBack                          |
| rollback          |                              | RolledBack                            |
| witnesses         |                              | WitnessQuorumNotMet                   |
| timestamp         | TimestampUnreadable          | TimestampInvalid                      |

Standard library only.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VerificationFailure(Exception):
    """A check failed; ``check`` names it, the message states the fact."""

    check: ClassVar[str] = "verification"
    malformed: ClassVar[bool] = False

    def __init__(self, fact: str, notification_id: int | None = None,
                 originator_id: str | None = None, version: int | None = None) -> None:
        super().__init__(fact)
        self.fact = fact
        self.notification_id = notification_id
        self.originator_id = originator_id
        self.version = version

    def __reduce__(self) -> tuple[Any, ...]:
        # found in worker processes, carried back by pickle with where it was found
        return (type(self), (self.fact, self.notification_id, self.originator_id, self.version))

    @property
    def reason(self) -> str:
        return self.fact

    def where(self) -> str:
        parts = []
        if self.notification_id is not None:
            parts.append(f"notification {self.notification_id}")
        if self.originator_id is not None:
            parts.append(f"aggregate {self.originator_id}")
        if self.version is not None:
            parts.append(f"version {self.version}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.fact}" if where else self.fact

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and isinstance(other, VerificationFailure)
                and self.__reduce__() == other.__reduce__())

    def __hash__(self) -> int:
        return hash(self.__reduce__()[1])

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "kind": "malformed" if self.malformed else "inauthentic",
            "notification_id": self.notification_id,
            "originator_id": self.originator_id,
            "version": self.version,
            "reason": self.fact,
        }


class MalformedInput(VerificationFailure):
    """The input cannot be parsed as what it claims to be: nothing in it could be checked."""

    malformed = True


class InauthenticData(VerificationFailure):
    """The input parses, and what it says fails a check."""


# -- malformed input ------------------------------------------------------------------------------


class MalformedDocument(MalformedInput):
    check = "document"


class MalformedPayload(MalformedInput):
    check = "payload"


class MalformedKeyEvent(MalformedInput):
    check = "registry"


class MalformedCheckpoint(MalformedInput, ValueError):
    check = "checkpoint"


class MalformedStore(MalformedInput):
    """A row holds a value of a type the ledger never writes (SQLite keeps any value in any
    column), or one the checks cannot read at all (then they stop there, and say so)."""

    check = "store"


class MalformedEnvelope(MalformedInput):
    check = "envelope"


# -- inauthentic data -----------------------------------------------------------------------------


class ExtractSignatureInvalid(InauthenticData):
    check = "extract-signature"


class EventsOutOfOrder(InauthenticData):
    check = "order"


class RegistryInvalid(InauthenticData):
    check = "registry"


class IssuerInvalid(InauthenticData):
    check = "issuer"


class CheckpointInvalid(InauthenticData):
    check = "checkpoint"


class CheckpointInconsistent(InauthenticData):
    check = "consistency"


class KeyNotValid(InauthenticData):
    check = "key"


class SignatureInvalid(InauthenticData):
    check = "signature"


class InclusionInvalid(InauthenticData):
    check = "inclusion"


class MembershipInvalid(InauthenticData):
    check = "membership"


class ChainIncomplete(InauthenticData):
    check = "completeness"


class StateMismatch(InauthenticData):
    check = "state"


class LogMismatch(InauthenticData):
    check = "log"


class VersionsBroken(InauthenticData):
    check = "version"


class ChainIndexMismatch(InauthenticData):
    check = "chains"


class TimeWentBack(InauthenticData):
    check = "time"


class RolledBack(InauthenticData):
    check = "rollback"


class TimestampUnreadable(MalformedInput):
    """The extract's timestamp is not an RFC 3161 response."""

    check = "timestamp"


class TimestampInvalid(InauthenticData):
    """The checkpoint's timestamp is not the trusted TSA's token over its note body."""

    check = "timestamp"


class WitnessQuorumNotMet(InauthenticData):
    """Fewer of the verifier's witnesses cosigned the checkpoint than its policy asks."""

    check = "witnesses"


# The order in which failures about the same event are reported, so "the first failure" is
# stable: the check a later one depends on comes first.
CHECK_ORDER = ("document", "extract-signature", "payload", "order", "registry", "issuer",
               "store", "envelope", "key", "signature", "time", "log", "version", "checkpoint",
               "consistency", "rollback", "inclusion", "membership", "completeness", "chains",
               "state", "witnesses", "timestamp")
