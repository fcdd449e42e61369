"""Policies as versioned data: the bundled catalogue versions carry the national rules of
shared/DOMAIN.md, documents are validated, and the version in force governs each day."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from domain.calendar import add_working_days, is_provisional, is_working_day
from domain.policies import Catalogue, PolicyBook, PolicyError, parse_policy
from tests.unit.policy_data import DOCUMENTS, book, calendar, catalogue, document


def test_every_bundled_policy_document_is_valid() -> None:
    kinds = sorted({d["kind"] for d in DOCUMENTS})
    assert kinds == ["calendar", "catalogue", "grading", "measures"]
    for doc in DOCUMENTS:
        parse_policy(doc)


def periods(cat: Catalogue, code: str) -> tuple[int, int | None]:
    item = cat.items[code]
    return item.min_disclosure_months, item.max_disclosure_months


def test_the_2026_rules_ordinary_3_to_12_months_serious_1_to_3_years_minor_hidden() -> None:
    cat = catalogue("2026.1")
    assert cat.effective_from == date(2026, 4, 1)
    assert periods(cat, "TAX-PENALTY") == (3, 12)  # ordinary
    assert periods(cat, "TAX-MAJOR-VIOLATION") == (12, 36)  # serious
    assert periods(cat, "TRANSPORT-MINOR") == (0, 3)  # minor: at most 3 months
    assert cat.minor_shown_publicly is False  # minor: normally not shown


def test_the_2023_rules_3_months_to_3_years_and_1_year_for_safety_food_and_fire() -> None:
    cat = catalogue("2023.1")
    assert cat.effective_from == date(2023, 5, 1)
    assert periods(cat, "TAX-PENALTY") == (3, 36)
    assert periods(cat, "TAX-MAJOR-VIOLATION") == (3, 36)
    assert periods(cat, "MKT-FOOD-PENALTY") == (12, 36)
    assert periods(cat, "SAFETY-PENALTY") == (12, 36)
    assert periods(cat, "FIRE-PENALTY") == (12, 36)


def test_the_2019_rules_ordinary_3_to_12_months_serious_6_months_to_3_years() -> None:
    cat = catalogue("2019.1")
    assert periods(cat, "ENV-PENALTY") == (3, 12)
    assert periods(cat, "ENV-PENALTY-SERIOUS") == (6, 36)


def test_each_item_has_its_department_and_the_court_list_is_not_repairable() -> None:
    cat = catalogue()
    assert cat.items["COURT-DEBTOR"].department == "court"
    assert cat.items["COURT-DEBTOR"].repairable is False
    assert cat.items["WATER-ARREARS"].disclosure == "government_shared"
    assert cat.retention_years == 5  # Zhejiang art. 16


def test_the_version_in_force_is_the_latest_effective_on_or_before_the_day() -> None:
    policies = book()
    assert policies.catalogue(date(2019, 6, 30)).version == "2016.1"
    assert policies.catalogue(date(2019, 7, 1)).version == "2019.1"
    assert policies.catalogue(date(2023, 4, 30)).version == "2019.1"
    assert policies.catalogue(date(2026, 11, 27)).version == "2026.1"
    assert policies.grading(date(2022, 12, 31)).version == "2016.1"
    assert policies.grading(date(2023, 1, 1)).version == "2023.1"
    with pytest.raises(LookupError, match="no catalogue policy is in force on 2015-12-31"):
        policies.catalogue(date(2015, 12, 31))


def test_a_later_publication_for_the_same_date_wins() -> None:
    policies = PolicyBook()
    first = copy.deepcopy(document("grading", "2016.1"))
    second = copy.deepcopy(first)
    second["version"] = "2016.2"
    second["base_points"] = 90
    policies.add(parse_policy(first))
    policies.add(parse_policy(second))
    assert policies.grading(date(2020, 1, 1)).version == "2016.2"


def broken(kind: str, version: str, path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document(kind, version))
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize("doc, message", [
    (broken("catalogue", "2026.1", ["effective_from"], "2026-13-01"), "effective_from .* is not a date"),
    (broken("catalogue", "2026.1", ["items", 2, "severity"], "grave"), r"items\[2\].severity is 'grave'"),
    (broken("catalogue", "2026.1", ["items", 2, "min_disclosure_months"], 40),
     r"items\[2\] \(MKT-PENALTY\): maximum disclosure period is below the minimum"),
    (broken("catalogue", "2026.1", ["items", 2, "max_disclosure_months"], None),
     "negative information needs a maximum period"),
    (broken("catalogue", "2026.1", ["items", 3, "code"], "MKT-PENALTY"), "MKT-PENALTY appears twice"),
    (broken("catalogue", "2026.1", ["items", 0, "department"], "Market"), "is not an authority code"),
    (broken("catalogue", "2026.1", ["kind"], "rules"), "kind is 'rules'"),
    (broken("catalogue", "2026.1", ["source"], KeyError), "source is missing"),
    (broken("grading", "2016.1", ["bands", 3, "min_points"], 10),
     "must end with a band whose min_points is null"),
    (broken("grading", "2016.1", ["bands", 0, "min_points"], 10), "from the highest min_points down"),
    (broken("grading", "2016.1", ["list_overrides", "grey"], None), "list_overrides.grey is not a list"),
])
def test_a_broken_policy_document_is_refused_naming_the_field(doc: dict[str, Any],
                                                               message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(doc)


# -- the working-day calendar ------------------------------------------------------------------


def test_national_day_2024_and_its_adjusted_weekend_working_days() -> None:
    cal = calendar()
    assert not is_working_day(cal, date(2024, 10, 1))
    assert is_working_day(cal, date(2024, 9, 29))  # a Sunday worked
    # Accepted on Friday 27 September 2024: Sunday 29, Monday 30, then 8, 9, 10 October.
    assert add_working_days(cal, date(2024, 9, 27), 5) == date(2024, 10, 10)


def test_spring_festival_2026_is_skipped() -> None:
    cal = calendar()
    # Friday 13 February 2026; Saturday 14 is worked; 16-20 and 23 are holidays.
    assert add_working_days(cal, date(2026, 2, 13), 5) == date(2026, 2, 27)
    assert not is_provisional(cal, date(2026, 2, 13), date(2026, 2, 27))


def test_a_year_not_yet_published_falls_back_and_is_provisional() -> None:
    cal = calendar()
    assert not is_working_day(cal, date(2027, 1, 1))
    assert is_working_day(cal, date(2027, 1, 4))
    assert is_provisional(cal, date(2026, 12, 28), date(2027, 1, 5))
