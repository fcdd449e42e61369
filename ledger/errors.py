"""Refusals of the ledger application: each one sentence, and nothing was written."""

from __future__ import annotations


class LedgerError(Exception):
    """A command the ledger refuses; nothing was written."""


class AlreadyInitialised(LedgerError):
    pass


class NoLedgerHere(LedgerError):
    """Only `credit init` and `credit demo` create a ledger; every other command finds one."""

    def __init__(self, where: str) -> None:
        super().__init__(f"there is no ledger at {where}: run `credit init` or `credit demo` "
                         "there first (or check CREDIT_DATABASE_URL)")


class SubjectRegisteredMeanwhile(LedgerError):
    """Another writer registered a subject this batch also registers: not a duplicate record."""

    def __init__(self, subjects: list[str]) -> None:
        super().__init__(
            f"subject {', '.join(sorted(subjects))} was registered by another writer while this "
            "one ran; nothing was written: run it again (it will find the subject registered)")


class NotInitialised(LedgerError):
    def __init__(self) -> None:
        super().__init__("the ledger has no platform key yet: run `credit init` first")


class AlreadyRecorded(LedgerError):
    """The same record, objection, application, listing, commitment or policy already exists."""


class AuthorityAlreadyRegistered(AlreadyRecorded):
    def __init__(self, code: str) -> None:
        super().__init__(f"authority {code!r} is already registered")


class RecordAlreadySubmitted(AlreadyRecorded):
    pass


class NotFound(LedgerError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"no {what} {key}")


class SubjectNotRegistered(LedgerError):
    def __init__(self, subject: str) -> None:
        super().__init__(f"subject {subject} is not registered: give its name to register it")


class PrivateKeyMismatch(LedgerError):
    def __init__(self, kid: str) -> None:
        super().__init__(f"the private key file of {kid} does not match its registered public key")
