"""Identifiers of credit subjects: the unified social credit code and the resident ID number.

Rules and test values come from ``shared/DOMAIN.md``:
- unified social credit code, GB 32100-2015: 18 characters, check character by weights 3^(i-1) mod 31
  over the alphabet ``0123456789ABCDEFGHJKLMNPQRTUWXY``;
- resident ID number, GB 11643-1999: 17 digits and an ISO 7064 MOD 11-2 check character; the birth
  date in positions 7-14 must be a real date, not in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUES = {ch: i for i, ch in enumerate(USCC_ALPHABET)}

RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RID_CHECK_CHARS = "10X98765432"

Scheme = Literal["uscc", "rid"]


class InvalidIdentifier(ValueError):
    """An identifier that cannot be a real unified social credit code or resident ID number."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"{value!r} is not valid: {reason}")
        self.value = value
        self.reason = reason


def uscc_check_char(first17: str) -> str:
    """The check character (position 18) of a unified social credit code."""
    total = sum(_USCC_VALUES[ch] * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    check = 31 - total % 31
    return USCC_ALPHABET[0 if check == 31 else check]


def parse_uscc(text: str) -> str:
    """Return the normalised code, or raise InvalidIdentifier naming the first rule broken."""
    code = text.strip().upper()
    if len(code) != 18:
        raise InvalidIdentifier(text, f"a unified social credit code has 18 characters, not {len(code)}")
    for pos, ch in enumerate(code, start=1):
        if ch not in _USCC_VALUES:
            raise InvalidIdentifier(
                text, f"character {pos} {ch!r} is not in the code alphabet (no I, O, S, V, Z)"
            )
    if not code[2:8].isdigit():
        raise InvalidIdentifier(text, "characters 3-8 must be an administrative division code")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidIdentifier(text, f"check character is {code[17]!r}, expected {expected!r}")
    return code


def resident_id_check_char(first17: str) -> str:
    """The check character (position 18) of a resident ID number (ISO 7064 MOD 11-2)."""
    total = sum(int(ch) * w for ch, w in zip(first17, RID_WEIGHTS, strict=True))
    return RID_CHECK_CHARS[total % 11]


def parse_resident_id(text: str, *, today: date) -> str:
    """Return the normalised number, or raise InvalidIdentifier naming the first rule broken.

    ``today`` is passed in so that the "birth date not in the future" rule is deterministic.
    """
    number = text.strip().upper()
    if len(number) != 18:
        raise InvalidIdentifier(text, f"a resident ID number has 18 characters, not {len(number)}")
    if not number[:17].isdigit():
        raise InvalidIdentifier(text, "the first 17 characters must be digits")
    if not (number[17].isdigit() or number[17] == "X"):
        raise InvalidIdentifier(text, "the check character must be a digit or X")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdentifier(text, f"birth date {number[6:14]} is not a real date") from None
    if born > today:
        raise InvalidIdentifier(text, f"birth date {born.isoformat()} is in the future")
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise InvalidIdentifier(text, f"check character is {number[17]!r}, expected {expected!r}")
    return number


def mask_resident_id(number: str) -> str:
    """Mask a resident ID number for logs and public pages: ``3301**********123X``."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_person_name(name: str) -> str:
    """A person's name for logs and public pages: the surname only (张**)."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def mask_subject_key(key: str) -> str:
    """A subject key fit for logs and public pages: people's numbers masked."""
    scheme, _, code = key.partition(":")
    return f"{scheme}:{mask_resident_id(code)}" if scheme == "rid" else key


@dataclass(frozen=True, order=True)
class SubjectRef:
    """A credit subject by identifier: a legal person or organisation (uscc) or a person (rid)."""

    scheme: Scheme
    code: str

    @property
    def key(self) -> str:
        """The stable text form used in events and indexes, e.g. ``uscc:91350100M000100Y43``."""
        return f"{self.scheme}:{self.code}"

    @property
    def is_person(self) -> bool:
        return self.scheme == "rid"

    def masked(self) -> str:
        """The identifier as it may appear in logs and on public pages."""
        return mask_resident_id(self.code) if self.is_person else self.code

    def __str__(self) -> str:
        return self.key


def parse_subject(text: str, *, today: date) -> SubjectRef:
    """Parse ``uscc:CODE``, ``rid:NUMBER`` or a bare identifier.

    A bare identifier is accepted when exactly one of the two schemes validates it.
    """
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    if sep:
        if scheme == "uscc":
            return SubjectRef("uscc", parse_uscc(rest))
        if scheme == "rid":
            return SubjectRef("rid", parse_resident_id(rest, today=today))
        raise InvalidIdentifier(text, f"unknown identifier scheme {scheme!r} (use uscc: or rid:)")
    candidates: list[SubjectRef] = []
    errors: list[str] = []
    try:
        candidates.append(SubjectRef("uscc", parse_uscc(text)))
    except InvalidIdentifier as exc:
        errors.append(f"as a unified social credit code: {exc.reason}")
    try:
        candidates.append(SubjectRef("rid", parse_resident_id(text, today=today)))
    except InvalidIdentifier as exc:
        errors.append(f"as a resident ID number: {exc.reason}")
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise InvalidIdentifier(text, "valid under both schemes; write uscc: or rid: before it")
    raise InvalidIdentifier(text, "; ".join(errors))
