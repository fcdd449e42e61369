"""Acts typed in after the day they were decided take effect on their own date (valid time), and
only from when they were recorded (transaction time); acts dated when they cannot have happened
are refused, naming both dates, and write nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from domain import clock
from domain.base import ImpossibleDate
from ledger.application import CreditLedger
from ledger.verify import LedgerVerifier
from tests.conftest import ENTERPRISE, at, initialised, submission
from workflows.services import CreditServices

OFFICE = "credit-office"


def day(text: str) -> Any:
    """The ledger clock on a day (10:00 China time): when an act is typed in."""
    return clock.frozen_at(at(f"{text}T02:00:00"))


def d(text: str) -> date:
    return date.fromisoformat(text)


class City:
    """Enterprise E. Typed in on time unless said otherwise:
    - P, a tax penalty decided 2019-03-01; an objection about it raised 06-10, accepted 06-11
      (due 06-18), extended ON 06-13 but typed in 06-17, ruled ON 07-01 to end P's public
      display, typed in 08-01;
    - V, a major tax violation decided 2019-09-01; a black listing on it from 10-15 (planned
      end 2022-10-15), removed ON 2020-01-20, typed in 2020-03-01;
    - a repair of V applied for ON 2020-04-01 and approved ON 2020-04-10, both typed in
      2022-06-01.
    """

    def __init__(self, services: CreditServices) -> None:
        self.s = s = services
        initialised(services, "2016-01-02T00:00:00")
        with day("2019-03-04"):
            self.p = s.submit_record(submission("tax", 1, decided=d("2019-03-01")))
        with day("2019-06-10"):
            self.objection = s.raise_objection(OFFICE, subject=ENTERPRISE, target_kind="record",
                                               target_id=self.p, grounds="已整改")
        with day("2019-06-11"):
            s.accept_objection(OFFICE, self.objection)
        with day("2019-06-17"):
            s.extend_objection(OFFICE, self.objection, "情况复杂", extended_on=d("2019-06-13"))
        with day("2019-08-01"):
            s.rule_objection(OFFICE, self.objection, outcome="end_disclosure",
                             reasoning="公示期已满", ruled_on=d("2019-07-01"))
        with day("2019-09-03"):
            self.v = s.submit_record(replace(submission("tax", 2, decided=d("2019-09-01")),
                                             item_code="TAX-MAJOR-VIOLATION"))
        with day("2019-10-15"):
            self.listing = s.add_listing(
                OFFICE, list_name="black", subject=ENTERPRISE, legal_basis="条例第二十四条",
                basis_records=[self.v], start=d("2019-10-15"), notified_on=d("2019-10-05"),
                planned_end=d("2022-10-15"), removal_conditions="补缴税款")
        with day("2020-03-01"):
            s.remove_listing(OFFICE, self.listing, reason="已补缴税款", removed_on=d("2020-01-20"))
        with day("2022-06-01"):
            self.repair = s.apply_repair(OFFICE, self.v, evidence=["已补缴"], commitment="守信",
                                         applied_on=d("2020-04-01"))
            s.decide_repair(OFFICE, self.repair, approve=True, decided_on=d("2020-04-10"))

    def state(self, as_of: str, known_at: str = "2026-11-27") -> dict[str, Any]:
        """``history --as-of AS_OF --known-at KNOWN_AT`` (a bare date: the end of that day)."""
        known = at(f"{known_at}T15:59:59.999999")  # 23:59:59.999999 China time
        return self.s.state(ENTERPRISE.key, d(as_of), known)

    def record(self, as_of: str, which: Any, known_at: str = "2026-11-27") -> dict[str, Any]:
        return next(r for r in self.state(as_of, known_at)["records"] if r["id"] == str(which))

    def objection_on(self, as_of: str, known_at: str = "2026-11-27") -> dict[str, Any]:
        (objection,) = self.state(as_of, known_at)["objections"]
        return dict(objection)

    def listing_on(self, as_of: str, known_at: str = "2026-11-27") -> dict[str, Any]:
        (listing,) = self.state(as_of, known_at)["listings"]
        return dict(listing)


@pytest.fixture
def city(ledger: CreditLedger) -> City:
    return City(CreditServices(ledger))


def test_a_back_dated_repair_counts_from_its_decision_date(city: City) -> None:
    before, after = city.record("2020-04-09", city.v), city.record("2020-04-10", city.v)
    assert (before["status"], before["public"], before["repaired"]) == ("in_force", True, False)
    assert (after["status"], after["public"], after["repaired"]) == ("repaired", False, True)
    assert city.state("2020-04-09")["grade"]["points"] < city.state("2020-04-10")["grade"]["points"]
    # typed in on 2022-06-01: the day before, the ledger did not know it
    assert city.record("2020-04-10", city.v, known_at="2022-05-31")["status"] == "in_force"
    assert city.record("2020-04-10", city.v, known_at="2022-06-01")["status"] == "repaired"
    (repair,) = city.state("2020-04-10")["repairs"]
    assert (repair["status"], repair["decided_on"]) == ("approved", "2020-04-10")


def test_a_back_dated_ruling_ends_disclosure_from_its_own_date(city: City) -> None:
    assert city.record("2019-06-30", city.p)["public"] is True
    ended = city.record("2019-07-01", city.p)
    assert (ended["status"], ended["public"], ended["disclosure_ended_by"]) == (
        "disclosure_ended", False, "ruling")
    assert city.record("2019-07-01", city.p, known_at="2019-07-31")["public"] is True
    assert city.record("2019-07-01", city.p, known_at="2019-08-01")["public"] is False


def test_an_extension_shows_from_the_day_it_was_granted(city: City) -> None:
    first = city.objection_on("2019-06-12")
    assert (first["deadline"], first["extended"]) == ("2019-06-18", False)
    extended = city.objection_on("2019-06-13")
    assert extended["extended"] is True and extended["deadline"] > "2019-06-18"
    # until it was typed in, even its own day showed the first deadline
    assert city.objection_on("2019-06-13", known_at="2019-06-16")["deadline"] == "2019-06-18"
    assert city.objection_on("2019-06-13", known_at="2019-06-17")["extended"] is True
    ruled = city.objection_on("2019-07-01")
    assert (ruled["status"], ruled["late"]) == ("ruled", False)


def test_a_listing_runs_to_its_planned_end_until_the_day_it_is_removed(city: City) -> None:
    running = city.listing_on("2020-01-19")
    assert (running["status"], running["ends_on"], running["removed_on"]) == (
        "active", "2022-10-15", None)
    removed = city.listing_on("2020-01-20")
    assert (removed["status"], removed["ends_on"]) == ("removed", "2020-01-20")
    # the removal was typed in on 2020-03-01
    assert city.listing_on("2020-01-25", known_at="2020-02-29")["status"] == "active"
    assert city.listing_on("2020-01-25", known_at="2020-03-01")["status"] == "removed"


def test_diff_across_a_back_dated_act_names_the_event_that_made_each_change(city: City) -> None:
    result = city.s.diff(ENTERPRISE.key, d("2020-04-09"), d("2020-04-10"),
                         at("2026-11-27T00:00:00"))
    kinds = {e["event"]: e["notification_id"] for e in result["events"]}
    assert set(kinds) == {"RepairApplication.Decided", "CreditRecord.Repaired"}
    (status,) = [c for c in result["changes"] if c["id"] == str(city.v) and c["field"] == "status"]
    assert (status["from"], status["to"]) == ("in_force", "repaired")
    assert kinds["CreditRecord.Repaired"] in status["events"]
    assert [c for c in result["changes"] if c["what"] == "grade"]
    assert all(c["events"] for c in result["changes"])


def test_the_read_model_day_of_change_follows_back_dated_acts(city: City) -> None:
    # viewed on a day before the repair decision, the state knows it changes on that day
    assert city.state("2020-04-05")["changes_on"] == "2020-04-10"


def test_after_all_of_it_the_ledger_verifies(city: City) -> None:
    app = city.s.ledger
    report = LedgerVerifier(app.engine, app.recorder.events_table).run()
    assert report.ok, report.failures


# -- dates that cannot be true ---------------------------------------------------------------


def impossible(city: City, today: str, act: Any, *dates: str) -> None:
    """The act, typed in on ``today``, is refused naming every one of ``dates``; nothing is
    written."""
    before = city.s.ledger.event_count()
    with day(today), pytest.raises(ImpossibleDate) as refused:
        act()
    for text in dates:
        assert text in str(refused.value), str(refused.value)
    assert city.s.ledger.event_count() == before


def test_an_act_dated_after_today_is_refused(city: City) -> None:
    s = city.s
    impossible(city, "2023-01-10", lambda: s.submit_record(
        submission("tax", 7, decided=d("2023-01-11"))), "2023-01-11", "2023-01-10")
    impossible(city, "2023-01-10", lambda: s.revoke_record(
        city.p, actor="tax", reason="x", revoked_on=d("2023-02-01")), "2023-02-01", "2023-01-10")


def test_a_repair_decided_before_it_was_applied_for_is_refused(city: City) -> None:
    s = city.s
    with day("2023-01-10"):
        number = s.apply_repair(OFFICE, city.p, evidence=["已缴纳"], commitment="守信",
                                applied_on=d("2023-01-05"))
    impossible(city, "2023-01-10", lambda: s.decide_repair(
        OFFICE, number, approve=False, reason="材料不全", decided_on=d("2023-01-04")),
        "2023-01-04", "2023-01-05")


def test_an_objection_ruled_before_it_was_accepted_is_refused(city: City) -> None:
    s = city.s
    with day("2023-01-03"):
        number = s.raise_objection(OFFICE, subject=ENTERPRISE, target_kind="record",
                                   target_id=city.v, grounds="有误")
        s.accept_objection(OFFICE, number)
    impossible(city, "2023-01-04", lambda: s.rule_objection(
        OFFICE, number, outcome="reject", reasoning="x", ruled_on=d("2023-01-02")),
        "2023-01-02", "2023-01-03")


def test_an_extension_after_the_deadline_had_passed_is_refused(city: City) -> None:
    s = city.s
    with day("2023-01-03"):
        number = s.raise_objection(OFFICE, subject=ENTERPRISE, target_kind="record",
                                   target_id=city.v, grounds="有误")
        deadline = s.accept_objection(OFFICE, number)
    late = deadline + timedelta(days=1)
    impossible(city, "2023-03-01", lambda: s.extend_objection(
        OFFICE, number, "复杂", extended_on=late), late.isoformat(), deadline.isoformat())


def test_an_objection_about_a_record_before_its_decision_is_refused(city: City) -> None:
    impossible(city, "2023-01-03", lambda: city.s.raise_objection(
        OFFICE, subject=ENTERPRISE, target_kind="record", target_id=city.v, grounds="有误",
        raised_on=d("2019-08-01")), "2019-08-01", "2019-09-01")


def test_a_removal_before_the_listing_started_is_refused(city: City) -> None:
    s = city.s
    with day("2023-01-03"):
        number = s.add_listing(OFFICE, list_name="red", subject=ENTERPRISE, legal_basis="表彰",
                               basis_records=[], start=d("2023-01-02"),
                               planned_end=d("2024-01-02"))
    impossible(city, "2023-01-05", lambda: s.remove_listing(
        OFFICE, number, reason="x", removed_on=d("2023-01-01")), "2023-01-01", "2023-01-02")
