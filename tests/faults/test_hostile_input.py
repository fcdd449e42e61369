"""Hostile and broken files are refused with their lines, never signed, never a traceback.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import clock
from ledger.application import CreditLedger
from tests.conftest import at
from tests.e2e.test_cli import Credit
from tests.integration.test_import import row
from workflows.importer import MAX_LINE_BYTES, Importer, ImportRefused
from workflows.services import CreditServices


def refused_lines(services: CreditServices, path: Path) -> dict[int, str]:
    before = services.ledger.event_count()
    with clock.frozen_at(at("2026-11-20T02:00:00")), pytest.raises(ImportRefused) as refused:
        Importer(services, "tax").run(path)
    assert services.ledger.event_count() == before
    return {e.line: e.reason for e in refused.value.errors}


@pytest.mark.initialised
def test_every_kind_of_poison_row_is_refused_with_its_line(services: CreditServices,
                                                          tmp_path: Path) -> None:
    good = json.dumps(row(1), ensure_ascii=False)
    lines = [
        good,
        json.dumps(row(2, summary="逾期\u0000申报"), ensure_ascii=False),
        json.dumps(row(3, subject_name="坏\u001b]0;title\u0007公司"), ensure_ascii=False),
        good.replace('"summary"', '"details": {"amount": ' + "9" * 5000 + '}, "summary"'),
        good.replace('"summary"', '"details": ' + "[" * 20000 + "]" * 20000 + ', "summary"'),
        good.replace('"summary"', '"details": {"amount": NaN}, "summary"'),
        good.replace('"summary"', '"details": {"amount": 1e400}, "summary"'),
        json.dumps(row(8, subject_name="名" * 201), ensure_ascii=False),
        json.dumps(row(9, decision_date="20260501"), ensure_ascii=False),
        json.dumps(row(10, summary="x" * (MAX_LINE_BYTES + 10))),
        json.dumps(row(11, details={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}),
                   ensure_ascii=False),
    ]
    path = tmp_path / "tax.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + "临".encode("gbk") + b"\n")
    errors = refused_lines(services, path)
    assert sorted(errors) == list(range(2, 13))
    assert "U+0000" in errors[2] and "summary" in errors[2]
    assert "U+001B" in errors[3]
    assert errors[4].startswith("not JSON")
    assert errors[5] == "not JSON: nested too deeply"
    assert errors[6] == "not JSON: NaN is not a number JSON allows"
    assert errors[7].startswith("not JSON: 1e400 is too large a number")
    assert "at most 200 characters" in errors[8]
    assert "is not a date" in errors[9]
    assert errors[10].startswith("the line has ")
    assert "nested more than 8 levels" in errors[11]
    assert errors[12].startswith("not UTF-8")


@pytest.mark.initialised
def test_a_gbk_encoded_csv_is_refused_with_its_lines(services: CreditServices,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "tax.csv"
    path.write_bytes(
        "subject,subject_name,item_code,decision_number,decision_date,summary\n"
        "uscc:91350100M000100Y43,测试公司,TAX-PENALTY,临税罚〔2026〕1号,2026-05-01,逾期申报\n"
        .encode("gbk"))
    errors = refused_lines(services, path)
    assert sorted(errors) == [2] and errors[2].startswith("not UTF-8")


def test_a_control_character_typed_at_the_command_line_is_one_sentence(
        database_url: str, tmp_path: Path) -> None:
    credit = Credit(database_url, tmp_path / "keys")
    credit("init")
    before = credit.events()
    refused = credit("record", "submit", "--as", "tax", "--subject", "91350100M000100Y43",
                     "--subject-name", "测试\u0000公司", "--item", "TAX-PENALTY",
                     "--decision-number", "1", "--on", "2026-01-05", "--summary", "x", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: the subject's name holds the control character "
                                     "U+0000")
    assert credit.events() == before


def test_signed_payloads_refuse_nan_and_infinity(ledger: CreditLedger) -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="not JSON compliant"):
            ledger.mapper.transcoder.encode({"amount": value})


@pytest.mark.initialised
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(content=st.binary(max_size=400), as_csv=st.booleans())
def test_any_bytes_are_refused_by_line_or_imported_never_a_traceback(
        services: CreditServices, content: bytes, as_csv: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("tax.csv" if as_csv else "tax.jsonl")
        path.write_bytes(content)
        importer = Importer(services, "tax")
        try:
            importer.validate(path, "csv" if as_csv else "jsonl")
        except ImportRefused as refused:
            assert refused.errors and all(e.line >= 1 for e in refused.errors)


def test_data_printed_as_text_carries_no_terminal_control_sequence() -> None:
    from cli.common import safe_text
    assert safe_text("杭州\x1b]0;pwned\x07公司\x9b2J\n第二行\t列") == "杭州]0;pwned公司2J\n第二行\t列"
