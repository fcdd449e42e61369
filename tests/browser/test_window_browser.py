"""The window in chromium: search -> subject -> as of a past day -> the report -> verify it
(VALID) -> a tampered copy (INVALID, the check named); English and back; a phone-sized
screen without horizontal scrolling; no person's ID number in any page's HTML."""

from __future__ import annotations

import hashlib
import json
import re
from base64 import urlsafe_b64decode, urlsafe_b64encode
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from ledger.settings import Settings
from tests.conftest import ENTERPRISE, WHOLLY_PUBLIC_NAME
from tests.web.conftest import ID_NUMBER, person_numbers

PHONE = {"width": 375, "height": 740}


def no_person_id(page: Page, numbers: list[str]) -> None:
    content = page.content()
    for number in numbers:
        assert number not in content, f"{page.url} shows a person's ID number"
    for found in ID_NUMBER.findall(content):
        assert found not in numbers


def test_search_subject_past_day_report_and_verify(served: str, browser: Browser,
                                                   city: Settings, tmp_path: Path) -> None:
    numbers = person_numbers(city)
    page = browser.new_page()
    page.goto(served + "/")
    expect(page.locator("h1")).to_have_text("查询企业信用")
    page.fill("input[name=q]", WHOLLY_PUBLIC_NAME[2:6])
    page.click("button[type=submit]")
    no_person_id(page, numbers)
    page.click(f"text={WHOLLY_PUBLIC_NAME}")
    expect(page.locator("#subject-name")).to_have_text(WHOLLY_PUBLIC_NAME)
    today_records = page.locator("#records-penalty li.record").count()
    assert today_records == 2
    no_person_id(page, numbers)

    # as of the day between the two penalties: the later one is not there yet
    dates = sorted(page.locator("#records-penalty .date").all_inner_texts())
    page.fill("#as_of", dates[0])
    page.click("form.as-of button")
    expect(page.locator("#as-of-notice")).to_contain_text(dates[0])
    assert page.locator("#records-penalty li.record").count() == 1
    page.click("text=回到今天")
    assert page.locator("#records-penalty li.record").count() == 2

    # the report: its page, then the signed file
    page.click("#issue-report")
    expect(page.locator("#report-number")).not_to_be_empty()
    number = page.locator("#report-number").inner_text()
    with page.expect_download() as download:
        page.click("#download-report")
    saved = tmp_path / "report.json"
    download.value.save_as(saved)
    assert page.locator("#report-sha256").inner_text() == hashlib.sha256(
        saved.read_bytes()).hexdigest()

    # verify it: VALID; a tampered copy: INVALID with the check named
    page.goto(served + "/verify")
    page.set_input_files("#extract", str(saved))
    page.click("#verify-button")
    expect(page.locator("#verdict-word")).to_contain_text("VALID")
    expect(page.locator("#verdict")).to_contain_text(number)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(changed_grade(json.loads(saved.read_bytes()))))
    page.set_input_files("#extract", str(tampered))
    page.click("#verify-button")
    expect(page.locator("#verdict-word")).to_contain_text("INVALID")
    assert re.fullmatch(r"[a-z-]+", page.locator("#failed-check").inner_text())


def changed_grade(document: dict[str, Any]) -> dict[str, Any]:
    body = document["payload"]
    payload = json.loads(urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["state"]["grade"]["points"] += 1
    encoded = urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode())
    return {**document, "payload": encoded.rstrip(b"=").decode()}


def test_english_and_back_stays_across_pages(served: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(served + f"/subject/{ENTERPRISE.key}")
    page.click("#lang-en")
    expect(page.locator("#grade h2")).to_have_text("Credit grade")
    page.click("text=Transparency")
    expect(page.locator("h1")).to_have_text("Transparency")
    page.goto(served + "/subject/uscc:91330100MA27XXXXXX")
    expect(page.locator("h1")).to_contain_text("Not found")
    page.click("#lang-zh")
    expect(page.locator("nav")).to_contain_text("信用查询")


def test_a_phone_sees_the_subject_page_without_scrolling_sideways(served: str, browser: Browser,
                                                                 city: Settings) -> None:
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    numbers = person_numbers(city)
    for path in (f"/subject/{ENTERPRISE.key}", "/", "/verify", "/transparency"):
        page.goto(served + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px screen"
        no_person_id(page, numbers)
    record = page.goto(served + f"/subject/{ENTERPRISE.key}")
    assert record is not None and record.ok
