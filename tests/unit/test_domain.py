"""Rules of the first domain slice: authorities and their keys, credit records."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain import clock
from domain.authorities import (
    Authority,
    InvalidAuthorityCode,
    KeyAlreadyRevoked,
    KeyNotOfAuthority,
    LastPlatformKey,
    NotByPlatform,
    RevocationInFuture,
    UnknownKind,
    numbered_kid,
)
from domain.base import ImpossibleDate, effective_at
from domain.identifiers import SubjectRef
from domain.records import CreditRecord, InvalidRecord, NotRecordOwner, RecordRuleBroken
from domain.subjects import InvalidSubject, Subject
from domain.validation import InvalidInput, check_text
from tests.unit.policy_data import catalogue

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SUBJECT = SubjectRef("uscc", "91350100M000100Y43")


def authority(code: str = "tax") -> Authority:
    with clock.frozen_at(NOW):
        return Authority.register(actor="platform", code=code, kind="department", name_zh="税务",
                                  name_en="Tax", kid=f"{code}-2026-1", public_key="k",
                                  valid_from=NOW)


def test_only_the_platform_registers_authorities() -> None:
    with pytest.raises(NotByPlatform):
        Authority.register(actor="tax", code="tax", kind="department", name_zh="x", name_en="x",
                           kid="tax-2026-1", public_key="k", valid_from=NOW)


@pytest.mark.parametrize("code", ["Tax", "t", "tax bureau", "-tax"])
def test_authority_codes_are_short_lower_case_names(code: str) -> None:
    with pytest.raises(InvalidAuthorityCode):
        Authority.register(actor="platform", code=code, kind="department", name_zh="x",
                           name_en="x", kid="x-2026-1", public_key="k", valid_from=NOW)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(UnknownKind):
        Authority.register(actor="platform", code="tax", kind="bank", name_zh="x", name_en="x",
                           kid="tax-2026-1", public_key="k", valid_from=NOW)


def test_a_rotation_retires_the_current_key_and_numbers_the_new_one() -> None:
    tax = authority()
    assert numbered_kid("tax", 2026, 2) == "tax-2026-2"
    with clock.frozen_at(NOW):
        tax.rotate_key(actor="platform", kid="tax-2026-2", public_key="k2", valid_from=NOW)
    assert tax.key("tax-2026-1").retired_at == NOW
    current = tax.current_key(NOW)
    assert current is not None and current.kid == "tax-2026-2"
    event = tax.collect_events()[-1]
    assert vars(event)["retires"] == "tax-2026-1"


def test_revocation_rules() -> None:
    tax = authority()
    with clock.frozen_at(NOW):
        with pytest.raises(RevocationInFuture):
            tax.revoke_key(actor="platform", kid="tax-2026-1", reason="x",
                           revoked_at=datetime(2027, 1, 1, tzinfo=UTC))
        with pytest.raises(KeyNotOfAuthority):
            tax.revoke_key(actor="platform", kid="court-2026-1", reason="x", revoked_at=NOW)
        tax.revoke_key(actor="platform", kid="tax-2026-1", reason="lost", revoked_at=NOW)
        with pytest.raises(KeyAlreadyRevoked):
            tax.revoke_key(actor="platform", kid="tax-2026-1", reason="again", revoked_at=NOW)


def test_the_platform_keeps_one_valid_key() -> None:
    platform = authority("platform")
    with clock.frozen_at(NOW), pytest.raises(LastPlatformKey):
        platform.revoke_key(actor="platform", kid="platform-2026-1", reason="x", revoked_at=NOW)


def submit(**changes: object) -> CreditRecord:
    fields: dict[str, object] = dict(actor="tax", subject=SUBJECT, item_code="TAX-PENALTY",
                                     decision_number="临税罚〔2026〕1号",
                                     decision_date=date(2026, 2, 1), summary="逾期申报",
                                     details={"amount": "100.00"}, catalogue=catalogue())
    fields.update(changes)
    with clock.frozen_at(NOW):
        return CreditRecord.submit(**fields)  # type: ignore[arg-type]


def test_the_bulk_submission_event_is_the_event_the_aggregate_records() -> None:
    with clock.frozen_at(NOW):
        direct = CreditRecord.submission(
            actor="tax", subject=SUBJECT, item_code="TAX-PENALTY",
            decision_number="临税罚〔2026〕1号", decision_date=date(2026, 2, 1),
            summary="逾期申报", details={"amount": "100.00"}, catalogue=catalogue())
    via_aggregate = submit().collect_events()[0]
    assert type(direct) is type(via_aggregate)
    assert vars(direct) == vars(via_aggregate)


@pytest.mark.parametrize("ref, kind", [
    (SUBJECT, None),
    (SubjectRef("uscc", "92330185MA2CXXXX1A"), None),
    (SubjectRef("rid", "330185199001011235"), "natural_person"),
])
def test_the_batch_registration_event_is_the_event_the_aggregate_records(
        ref: SubjectRef, kind: str | None) -> None:
    with clock.frozen_at(NOW):
        direct = Subject.registration(actor="market", ref=ref, name=" 临安某某 ", kind=kind)
        via_aggregate = Subject.register(actor="market", ref=ref, name=" 临安某某 ",
                                         kind=kind).collect_events()[0]
    assert type(direct) is type(via_aggregate)
    assert vars(direct) == vars(via_aggregate)
    for path in (Subject.registration, Subject.register):  # the same rules refuse the same
        with pytest.raises(InvalidSubject, match="is identified by a"):
            path(actor="market", ref=ref if ref.is_person else SUBJECT, name="某",
                 kind="legal_person" if ref.is_person else "natural_person")


@pytest.mark.parametrize("changes, message", [
    ({"summary": "  "}, "summary must not be empty"),
    ({"decision_number": ""}, "decision number must not be empty"),
    ({"item_code": "tax penalty"}, "not a catalogue item code"),
    ({"item_code": "NO-SUCH-ITEM"}, "is not in catalogue 2026.1"),
    ({"item_code": "MKT-PENALTY"}, "is submitted by 'market', not by 'tax'"),
])
def test_a_record_that_breaks_a_rule_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RecordRuleBroken, match=message):
        submit(**changes)


def test_details_too_big_for_an_entry_of_the_log_s_tiles_are_refused() -> None:
    # 20 texts of 600 three-byte characters: each allowed, together too big for a log entry
    with pytest.raises(InvalidInput, match=r"details takes 36\d{3} bytes as JSON; at most 32000"):
        submit(details={f"k{i}": "罚" * 600 for i in range(20)})
    submit(details={f"k{i}": "罚" * 500 for i in range(20)})  # 30,000 and some: taken


def test_the_size_bound_that_spares_writing_details_out_never_understates_it() -> None:
    """check_value measures the JSON only when its walk's upper bound exceeds the limit: a bound
    below the true size would let an oversized value through."""
    import json
    import random

    from domain.validation import _check_value
    rng = random.Random(7)
    alphabet = ["a", "罚", "\n", "\t", '"', "\\", "\U0001f600", "\u2028", "/", "é"]

    def value(depth: int) -> object:
        kind = rng.randrange(7 if depth < 4 else 4)
        if kind == 0:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        if kind == 1:
            return rng.choice([True, False, None, 0, -10**15, 10**15])
        if kind == 2:
            return rng.choice([-1.2345678901234567e-300, 1e15, -123456.78901234567, 0.1])
        if kind == 3:
            return rng.randrange(-10**15, 10**15)
        if kind in (4, 5):
            return {"".join(rng.choice(alphabet[4:]) for _ in range(rng.randrange(8))) + str(i):
                    value(depth + 1) for i in range(rng.randrange(6))}
        return [value(depth + 1) for _ in range(rng.randrange(6))]
    for _ in range(2000):
        v = value(0)
        exact = len(json.dumps(v, ensure_ascii=False).encode("utf-8"))
        assert _check_value("details", v, 0) >= exact, v


def test_a_decision_dated_after_the_day_it_is_submitted_is_refused_naming_both_days() -> None:
    with pytest.raises(ImpossibleDate, match="the decision date 2026-03-02 is after today, "
                                             "2026-03-01"):
        submit(decision_date=date(2026, 3, 2))


def test_a_correction_names_the_version_it_supersedes() -> None:
    record = submit()
    with clock.frozen_at(NOW):
        record.correct(actor="tax", reason="笔误", changes={"summary": "逾期未申报"})
    corrected = record.collect_events()[-1]
    assert vars(corrected)["supersedes"] == 1
    assert record.summary == "逾期未申报" and record.version == 2
    with pytest.raises(NotRecordOwner):
        record.correct(actor="court", reason="x", changes={"summary": "y"})
    # the credit office corrects only as the outcome of an objection ruling, which it names
    record.correct(actor="credit-office", reason="异议处理", changes={"summary": "z"},
                   objection="YY-2026-1")
    assert vars(record.collect_events()[-1])["objection"] == "YY-2026-1"
    with pytest.raises(InvalidRecord, match="at least one field"):
        record.correct(actor="tax", reason="x", changes={})


def test_the_effective_time_of_a_decision_is_the_start_of_its_day_in_china() -> None:
    event = submit().collect_events()[0]
    assert effective_at(event) == datetime(2026, 1, 31, 16, 0, tzinfo=UTC)


def test_events_take_the_ledger_clock() -> None:
    event = submit().collect_events()[0]
    assert event.timestamp == NOW


@pytest.mark.parametrize("allow_newlines", [False, True])
def test_text_refuses_exactly_the_control_characters_and_names_the_first(
        allow_newlines: bool) -> None:
    """check_text searches with one expression; it must refuse exactly what the rule lists
    (validation.py's docstring), at every edge of every range, and name the first by position."""
    def control(code: int) -> bool:
        if allow_newlines and chr(code) in "\n\t":
            return False
        return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF
    edges = {0x00, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0x9F, 0xA0,
             0x3000, 0xD7FF, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xE000, 0xFEFF, 0xFFFF, 0x10000,
             0x10FFFF}
    for code in sorted(edges):
        text = "临安" + chr(code) + "\x01"
        if control(code):
            with pytest.raises(InvalidInput, match=rf"U\+{code:04X} at character 3$"):
                check_text("summary", text, allow_newlines=allow_newlines)
        else:  # the first control character is then the \x01 after it
            with pytest.raises(InvalidInput, match=r"U\+0001 at character 4$"):
                check_text("summary", text, allow_newlines=allow_newlines)
            check_text("summary", text[:3], allow_newlines=allow_newlines)
