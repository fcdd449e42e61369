"""Identifiers, with the valid and invalid values of shared/DOMAIN.md."""

from __future__ import annotations

from datetime import date

import pytest

from domain.identifiers import (
    InvalidIdentifier,
    SubjectRef,
    mask_resident_id,
    parse_resident_id,
    parse_subject,
    parse_uscc,
    resident_id_check_char,
    uscc_check_char,
)

TODAY = date(2026, 11, 27)

VALID_USCC = ["91350100M000100Y43", "914403001922038216", "91110000600037341L",
              "121200004013590816", "92340602MA2PEL605A", "91110108551385082Q",
              "91320100748204660Q"]
INVALID_USCC = ["91350100M000100Y4Z", "91110000600037341N", "9111000060003IOZSV",
                "91110108717809965C", "9133010057462616XH"]


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_unified_social_credit_codes_are_accepted(code: str) -> None:
    assert parse_uscc(code) == code
    assert parse_uscc(code.lower() + "  ") == code


@pytest.mark.parametrize("code", INVALID_USCC)
def test_invalid_unified_social_credit_codes_are_refused_with_a_reason(code: str) -> None:
    with pytest.raises(InvalidIdentifier) as err:
        parse_uscc(code)
    assert err.value.reason


def test_the_check_character_is_computed_by_the_standard_weights() -> None:
    assert uscc_check_char("91350100M000100Y4") == "3"
    with pytest.raises(InvalidIdentifier, match="check character is 'N', expected 'L'"):
        parse_uscc("91110000600037341N")


def test_letters_outside_the_code_alphabet_are_named() -> None:
    with pytest.raises(InvalidIdentifier, match="character 14 'I' is not in the code alphabet"):
        parse_uscc("9111000060003IOZSV")


@pytest.mark.parametrize("first", ["A", "N", "Y"])
def test_codes_starting_with_a_letter_are_not_wrongly_refused(first: str) -> None:
    body = first + "1330112" + "MA2PEL605"
    code = body + uscc_check_char(body)
    assert parse_uscc(code) == code


def test_the_wrong_length_is_named() -> None:
    with pytest.raises(InvalidIdentifier, match="has 18 characters, not 17"):
        parse_uscc("91350100M000100Y4")


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014",
                                    "360426199101010071"])
def test_valid_resident_id_numbers_are_accepted(number: str) -> None:
    assert parse_resident_id(number, today=TODAY) == number


def test_a_lower_case_x_is_normalised() -> None:
    assert parse_resident_id("11010519491231002x", today=TODAY) == "11010519491231002X"


def test_an_invalid_resident_id_check_character_is_named() -> None:
    with pytest.raises(InvalidIdentifier, match="check character is '1', expected 'X'"):
        parse_resident_id("110105194912310021", today=TODAY)


def test_a_birth_date_that_does_not_exist_is_refused() -> None:
    body = "11010519490230002"  # 30 February
    with pytest.raises(InvalidIdentifier, match="19490230 is not a real date"):
        parse_resident_id(body + resident_id_check_char(body), today=TODAY)


def test_a_birth_date_in_the_future_is_refused() -> None:
    body = "33011220270101001"
    with pytest.raises(InvalidIdentifier, match="is in the future"):
        parse_resident_id(body + resident_id_check_char(body), today=TODAY)


def test_resident_ids_are_masked_for_logs_and_public_pages() -> None:
    assert mask_resident_id("33011219800101123X") == "3301**********123X"
    assert SubjectRef("rid", "33011219800101123X").masked() == "3301**********123X"
    assert SubjectRef("uscc", "91350100M000100Y43").masked() == "91350100M000100Y43"


def test_subjects_parse_with_or_without_a_scheme() -> None:
    assert parse_subject("uscc:91350100M000100Y43", today=TODAY).key == "uscc:91350100M000100Y43"
    assert parse_subject("rid:11010519491231002X", today=TODAY).is_person
    assert parse_subject("11010519491231002X", today=TODAY) == SubjectRef("rid",
                                                                          "11010519491231002X")
    assert parse_subject("91350100M000100Y43", today=TODAY).scheme == "uscc"


def test_a_bare_identifier_invalid_under_both_schemes_gives_both_reasons() -> None:
    with pytest.raises(InvalidIdentifier) as err:
        parse_subject("91350100M000100Y4Z", today=TODAY)
    assert "as a unified social credit code" in err.value.reason
    assert "as a resident ID number" in err.value.reason


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(InvalidIdentifier, match="unknown identifier scheme 'tax'"):
        parse_subject("tax:123", today=TODAY)
