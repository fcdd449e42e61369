"""What any input may hold before anything is signed: one set of rules for the CLI, the import
and the API (docs/IMPORT.md, "Limits").

- Text is Unicode without control characters: no NUL, no C0 controls (U+0000-U+001F, so no tab
  or line break either, except in the long free texts that allow line breaks), no DEL and no C1
  controls (U+007F-U+009F, which terminals read as escape sequences), and no lone surrogates.
- Numbers are finite and within ±10^15 (amounts belong in decimal strings: "1234.50").
- Nested objects and lists go at most 8 levels deep, with at most 200 entries each.
Standard library only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from domain.base import DomainError

MAX_TEXT = 2000  # characters in one free-text field (a summary, a reason)
MAX_NAME = 200  # characters in a name
MAX_DEPTH = 8
MAX_ENTRIES = 200
MAX_NUMBER = 10**15
# bytes of a details or changes value written as JSON: with the rest of its event, well under the
# 65,535 bytes an entry of the log's tiles can hold (FORMAT.md §11)
MAX_VALUE_BYTES = 32_000


class InvalidInput(DomainError):
    """Input refused before anything is signed; the message names the field and the fault."""


# One search per field instead of a test per character, for the rules above: C0 (tab and line
# feed allowed in long texts), DEL and C1, lone surrogates.
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def check_text(field: str, value: str, *, limit: int = MAX_TEXT,
               allow_newlines: bool = False) -> None:
    """A text field: within ``limit`` characters, no control character (named by position)."""
    if len(value) > limit:
        raise InvalidInput(f"{field} has {len(value)} characters; at most {limit}")
    found = (_CONTROL_BUT_LINES if allow_newlines else _ANY_CONTROL).search(value)
    if found is not None:
        raise InvalidInput(f"{field} holds the control character U+{ord(found.group()):04X} at "
                           f"character {found.start() + 1}")


def check_value(field: str, value: Any, depth: int = 0) -> None:
    """A JSON-like value (``details``, ``changes``): bounded depth, entries, numbers, text and
    size."""
    if depth == 0:
        # The walk bounds the JSON size from above; only a value that might be too big is
        # written out to be measured (most details are a few dozen bytes).
        if _check_value(field, value, 0) <= MAX_VALUE_BYTES:
            return
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise InvalidInput(f"{field} takes {size} bytes as JSON; at most {MAX_VALUE_BYTES}")
        return
    _check_value(field, value, depth)


def _text_bound(text: str) -> int:
    # in UTF-8 a character takes at most 4 bytes, an escaped one (\n, \", \\) 2; quotes 2
    return 4 * len(text) + 2


def _check_value(field: str, value: Any, depth: int) -> int:
    """Check the value; return an upper bound of its size in bytes as JSON."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{field} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{field} is {value!r}: numbers must be finite (write amounts as "
                               "decimal strings)")
        if abs(value) > MAX_NUMBER:
            raise InvalidInput(f"{field} is beyond ±10^15: write it as a decimal string")
        return 32  # repr of a float within ±10^15 is at most 24 characters
    if isinstance(value, str):
        check_text(field, value, allow_newlines=True)
        return _text_bound(value)
    if isinstance(value, dict):
        if len(value) > MAX_ENTRIES:
            raise InvalidInput(f"{field} has {len(value)} entries; at most {MAX_ENTRIES}")
        size = 2
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{field} has a key that is not text")
            check_text(f"{field} key", key, limit=MAX_NAME)
            size += _text_bound(key) + 4 + _check_value(f"{field}.{key}", item, depth + 1)
        return size
    if isinstance(value, list | tuple):
        if len(value) > MAX_ENTRIES:
            raise InvalidInput(f"{field} has {len(value)} entries; at most {MAX_ENTRIES}")
        size = 2
        for index, item in enumerate(value):
            size += 2 + _check_value(f"{field}[{index}]", item, depth + 1)
        return size
    raise InvalidInput(f"{field} holds a {type(value).__name__}, not text, a number or JSON")
