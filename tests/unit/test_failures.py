"""The vocabulary of verification failures (proofs/failures.py, docs/FORMAT.md §9)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

from proofs import failures
from proofs.failures import (
    CHECK_ORDER,
    InauthenticData,
    MalformedInput,
    SignatureInvalid,
    VerificationFailure,
)

FORMAT = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"


def named_failures() -> list[type[VerificationFailure]]:
    return [v for v in vars(failures).values() if isinstance(v, type)
            and issubclass(v, VerificationFailure)
            and v not in (VerificationFailure, MalformedInput, InauthenticData)]


def test_every_failure_is_malformed_or_inauthentic_with_a_documented_check() -> None:
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", FORMAT.read_text(), re.M))
    found = named_failures()
    assert len(found) >= 18
    for kind in found:
        assert issubclass(kind, MalformedInput) != issubclass(kind, InauthenticData), kind
        assert kind.check in CHECK_ORDER, kind
        assert kind.check in documented, f"FORMAT.md §9 does not list {kind.check}"
    assert {k.check for k in found} == set(CHECK_ORDER)


def test_a_failure_found_in_a_worker_process_comes_back_whole() -> None:
    found = SignatureInvalid("signature does not match key tax-2026-1", 1042, "a-b", 3)
    back = pickle.loads(pickle.dumps(found))
    assert type(back) is SignatureInvalid and back == found
    assert str(back) == ("notification 1042, aggregate a-b, version 3: signature does not match "
                         "key tax-2026-1")
    assert back.as_dict() == {"check": "signature", "kind": "inauthentic",
                              "notification_id": 1042, "originator_id": "a-b", "version": 3,
                              "reason": "signature does not match key tax-2026-1"}
