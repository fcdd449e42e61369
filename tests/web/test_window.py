"""The 信用临安 window through Flask's test client, over a copy of the demo city, on SQLite and
PostgreSQL: search, subject pages (today and as of a past day), record pages with their signed
events, the report and its check, transparency, the language switch, masking and 404s."""

from __future__ import annotations

import hashlib
import json
import re
from base64 import urlsafe_b64decode, urlsafe_b64encode
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from ledger.application import CreditLedger
from ledger.settings import Settings
from tests.conftest import ENTERPRISE, WHOLLY_PUBLIC_NAME
from tests.web.conftest import ID_NUMBER, html, person_numbers, subjects
from web.translations.make_catalogue import MO, PO, catalogue

ROOT = Path(__file__).resolve().parents[2]


def enterprise_pages(client: FlaskClient, settings: Settings) -> list[tuple[str, str]]:
    return [(str(r["subject"]), html(client.get(f"/subject/{r['subject']}")))
            for r in subjects(settings, "subject LIKE 'uscc:%'")]


def wholly_public_with_records(client: FlaskClient, settings: Settings) -> tuple[str, str]:
    """The enterprise the city template adds: two recent tax penalties, nothing else."""
    page = html(client.get(f"/subject/{ENTERPRISE.key}"))
    assert 'id="issue-report"' in page and WHOLLY_PUBLIC_NAME in page
    return ENTERPRISE.key, page


def test_search_finds_enterprises_by_part_of_the_name_and_by_full_code(
        client: FlaskClient, city: Settings) -> None:
    row = subjects(city, "subject LIKE 'uscc:%'")[0]
    name, code = str(row["name"]), str(row["subject"]).removeprefix("uscc:")
    by_part = html(client.get("/", query_string={"q": name[2:6]}))
    assert f'href="/subject/uscc:{code}"' in by_part
    by_code = html(client.get("/", query_string={"q": code}))
    assert f'href="/subject/uscc:{code}"' in by_code and by_code.count('class="subject-link"') == 1
    nothing = html(client.get("/", query_string={"q": "没有这样的公司名"}))
    assert "没有找到符合条件的企业" in nothing


def test_the_public_never_finds_or_sees_a_natural_person(client: FlaskClient,
                                                          city: Settings) -> None:
    numbers = person_numbers(city)
    assert numbers, "the demo city has people"
    for number in numbers[:5]:
        found = client.get("/", query_string={"q": number})
        assert 'class="subject-link"' not in html(found)
        page = client.get(f"/subject/rid:{number}")
        assert page.status_code == 404
        assert number not in html(page) and number[6:14] not in html(page)
    pages = "".join(page for _, page in enterprise_pages(client, city))
    for number in numbers:
        assert number not in pages
    assert not ID_NUMBER.search(pages.replace("uscc:", ""))  or all(
        m not in numbers for m in ID_NUMBER.findall(pages))


def test_the_subject_page_groups_records_and_explains_the_grade(client: FlaskClient,
                                                                 city: Settings) -> None:
    _, page = wholly_public_with_records(client, city)
    for group in ("records-licensing", "records-penalty", "records-other"):
        assert f'id="{group}"' in page
    penalties = page.split('id="records-penalty"')[1].split("</section>")[0]
    assert penalties.count('class="record"') == 2 and "有效" in penalties  # the status
    assert "国家税务总局杭州市临安区税务局" in penalties  # the department that signed it
    grade = page.split('id="grade"')[1].split("</section>")[0]
    assert "基础分" in grade and grade.count("TAX-PENALTY") == 2  # one line per penalty
    assert re.search(r"评价规则版本 \d{4}\.\d+", grade)
    assert '<svg class="chart"' in grade and "<path" in grade
    listed = [page for _, page in enterprise_pages(client, city) if "MD-black-" in page]
    assert listed, "the demo city has an enterprise that was on the black list"
    for page in listed:
        lists = page.split('id="listings"')[1].split("</section>")[0]
        assert "严重失信主体名单" in lists and "依据：" in lists
        # the measures of a listing in force; none once it ended
        assert ('class="measures"' in lists) == ('class="tag bad">有效' in lists)


def test_a_past_day_shows_the_file_as_the_ledger_showed_it_then(client: FlaskClient,
                                                                 city: Settings) -> None:
    key, today = wholly_public_with_records(client, city)
    dates = sorted(re.findall(r'<span class="date">(\d{4}-\d{2}-\d{2})</span>', today))
    first = dates[0]
    before = html(client.get(f"/subject/{key}", query_string={"as_of": "2016-01-02"}))
    assert 'id="as-of-notice"' in before and "2016-01-02" in before
    assert today.count('class="record"') > before.count('class="record"')
    on_first = html(client.get(f"/subject/{key}", query_string={"as_of": first}))
    assert 'class="record"' in on_first
    assert client.get(f"/subject/{key}", query_string={"as_of": "20160102"}).status_code == 400
    assert client.get(f"/subject/{key}", query_string={"as_of": "2999-01-01"}).status_code == 400


def test_a_record_page_shows_its_signed_events_and_their_inclusion(client: FlaskClient,
                                                                    city: Settings) -> None:
    _, page = wholly_public_with_records(client, city)
    record_id = re.search(r'href="/record/([0-9a-f-]{36})"', page)
    assert record_id is not None
    shown = html(client.get(f"/record/{record_id.group(1)}"))
    assert "签名事件" in shown and "提交" in shown
    assert re.search(r'<td class="num">\d+</td>', shown)  # the log index
    assert re.search(r"<code>[a-z-]+-\d{4}-\d+</code>", shown)  # the key that signed
    assert "已包含" in shown and "已核对" in shown
    assert client.get("/record/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/record/not-a-uuid").status_code == 404


def form_token(client: FlaskClient) -> str:
    """The session's CSRF token, as every form of the window carries it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html(client.get("/verify")))
    assert found is not None
    return found.group(1)


def issue(client: FlaskClient, key: str) -> tuple[str, bytes, str]:
    issued = client.post(f"/subject/{key}/report", data={"csrf_token": form_token(client)})
    assert issued.status_code == 303, html(issued)
    number = issued.headers["Location"].rsplit("/", 1)[-1]
    report = html(client.get(f"/reports/{number}"))
    data = client.get(f"/reports/{number}.json").get_data()
    return number, data, report


def test_a_report_carries_its_number_and_file_digest_and_verifies(
        client: FlaskClient, city: Settings) -> None:
    key, _ = wholly_public_with_records(client, city)
    number, data, report = issue(client, key)
    assert f'id="report-number">{number}<' in report
    assert f'id="report-sha256">{hashlib.sha256(data).hexdigest()}<' in report
    assert "<svg" in report and "@media print" in html(client.get("/static/window.css"))
    checked = client.post("/verify", data={"extract": (BytesIO(data), "report.json"),
                                           "csrf_token": form_token(client)},
                          content_type="multipart/form-data")
    assert checked.status_code == 200 and "VALID" in html(checked) and number in html(checked)
    ledger = CreditLedger(city)
    try:
        logged = [f for f in ledger.stream_facts("Query") if f.data["command"] == "extract.issue"]
    finally:
        ledger.close()
    assert logged and logged[-1].data["reader"] == "public"


def test_a_tampered_report_is_invalid_with_the_check_named(client: FlaskClient,
                                                           city: Settings) -> None:
    key, _ = wholly_public_with_records(client, city)
    _, data, _ = issue(client, key)
    document = json.loads(data)
    body = document["payload"]
    payload: dict[str, Any] = json.loads(urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["state"]["grade"]["grade"] = "A" if payload["state"]["grade"]["grade"] != "A" else "B"
    document["payload"] = urlsafe_b64encode(json.dumps(payload, ensure_ascii=False).encode()
                                            ).rstrip(b"=").decode()
    checked = client.post("/verify", data={"csrf_token": form_token(client),
        "extract": (BytesIO(json.dumps(document).encode()), "report.json")},
        content_type="multipart/form-data")
    assert checked.status_code == 422
    page = html(checked)
    assert "INVALID" in page and re.search(r'id="failed-check">[a-z-]+<', page)
    not_json = client.post("/verify", data={"extract": (BytesIO(b"\xff\x00"), "x.json"),
                                            "csrf_token": form_token(client)},
                           content_type="multipart/form-data")
    assert not_json.status_code == 422 and "INVALID" in html(not_json)


def test_a_file_that_is_not_wholly_public_gets_no_public_report(client: FlaskClient,
                                                                city: Settings) -> None:
    for key, page in enterprise_pages(client, city):
        if 'id="issue-report"' not in page:
            refused = client.post(f"/subject/{key}/report",
                                  data={"csrf_token": form_token(client)})
            assert refused.status_code == 403 and "主体本人" in html(refused)
            return
    raise AssertionError("every enterprise of the demo city is wholly public")


def test_transparency_lists_checkpoints_the_key_and_the_verifier(client: FlaskClient,
                                                                 city: Settings) -> None:
    page = html(client.get("/transparency"))
    assert "#" in page and "一致" in page
    pem = client.get("/transparency/platform.pem").get_data()
    assert pem == (city.keys_dir / "trusted-platform.pem").read_bytes()
    verifier = client.get("/transparency/credit-verify.pyz").get_data()
    digest = hashlib.sha256(verifier).hexdigest()
    assert f'id="verifier-sha256">{digest}<' in page
    assert digest in (ROOT / "docs" / "VERIFYING.md").read_text(encoding="utf-8")


def test_english_by_a_switch_that_stays_across_pages(client: FlaskClient,
                                                     city: Settings) -> None:
    assert "信用查询" in html(client.get("/"))
    switched = client.get("/lang/en", query_string={"next": "/transparency"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/transparency"
    assert "Transparency" in html(client.get("/transparency"))
    missing = client.get("/subject/uscc:91330100MA27XXXXXX")
    assert missing.status_code == 404 and "Not found" in html(missing)
    client.get("/lang/zh")
    assert "未找到" in html(client.get("/subject/uscc:91330100MA27XXXXXX"))
    away = client.get("/lang/en", query_string={"next": "//evil.example/"})
    assert away.headers["Location"] == "/"  # never sent off the site


def test_the_english_catalogue_is_complete_and_compiled() -> None:
    po, mo, missing = catalogue()
    assert missing == [], f"no English for {missing}: add them to make_catalogue.py"
    assert PO.read_bytes() == po and MO.read_bytes() == mo, \
        "run `.venv/bin/python -m web.translations.make_catalogue`"


def test_a_form_without_its_csrf_token_is_refused_and_does_nothing(client: FlaskClient,
                                                                   city: Settings) -> None:
    from tests.web.test_api import events

    before = events(city)
    forged = client.post(f"/subject/{ENTERPRISE.key}/report")  # from another site
    assert forged.status_code == 400 and "Traceback" not in html(forged)
    wrong = client.post(f"/subject/{ENTERPRISE.key}/report", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 400
    assert events(city) == before  # no report issued, no query logged
    form_token(client)  # a page with a form: the session begins
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_the_office_signs_in_with_its_token_and_accepts_an_objection(client: FlaskClient,
                                                                     city: Settings) -> None:
    from tests.web.test_api import bearer, events
    from tests.web.test_api import issue as issue_token

    assert client.get("/office").status_code == 302  # to the sign-in page
    refused = client.post("/office/login", data={"token": issue_token(city, "tax"),
                                                 "csrf_token": form_token(client)})
    assert refused.status_code == 401 and 'id="login-refused"' in html(refused)
    subject = bearer(issue_token(city, f"subject:{ENTERPRISE.key}"))
    record = client.get(f"/api/subjects/{ENTERPRISE.key}").get_json()["records"][0]["id"]
    raised = client.post("/api/objections", json={"subject": ENTERPRISE.key, "record": record,
                                                  "grounds": "金额有误"}, headers=subject)
    number = raised.get_json()["number"]
    office = issue_token(city, "credit-office")
    signed_in = client.post("/office/login", data={"token": office,
                                                   "csrf_token": form_token(client)})
    assert signed_in.status_code == 302
    desk = html(client.get("/office"))
    assert number in desk and office not in desk and ENTERPRISE.code in desk
    accepted = client.post(f"/office/objections/{number}/accept",
                           data={"csrf_token": form_token(client)})
    assert accepted.status_code == 302
    state = client.get(f"/api/subjects/{ENTERPRISE.key}", query_string={"purpose": "核对"},
                       headers=bearer(office)).get_json()
    assert [r["under_objection"] for r in state["records"] if r["id"] == record] == [True]
    desk = html(client.get("/office"))
    assert f'action="/office/objections/{number}/extend"' in desk  # the next acts offered
    before = events(city)
    unreasoned = client.post(f"/office/objections/{number}/rule",
                             data={"csrf_token": form_token(client), "outcome": "reject"})
    assert unreasoned.status_code == 422 and events(city) == before
    extended = client.post(f"/office/objections/{number}/extend",
                           data={"csrf_token": form_token(client), "reason": "需调取卷宗"})
    assert extended.status_code == 302
    ruled = client.post(f"/office/objections/{number}/rule", data={
        "csrf_token": form_token(client), "outcome": "revoke", "reasoning": "处罚已被撤销"})
    assert ruled.status_code == 302
    state = client.get(f"/api/subjects/{ENTERPRISE.key}", query_string={"purpose": "核对"},
                       headers=bearer(office)).get_json()
    assert [r["status"] for r in state["records"] if r["id"] == record] == ["revoked"]
    assert number not in html(client.get("/office"))  # ruled: off the queue
    again = client.post("/api/objections", json={"subject": ENTERPRISE.key, "record": record,
                                                 "grounds": "再议"}, headers=subject)
    second = again.get_json()["number"]
    declined = client.post(f"/office/objections/{second}/decline", data={
        "csrf_token": form_token(client), "reason": "记录已撤销"})
    assert declined.status_code == 302 and second not in html(client.get("/office"))
    client.post("/office/logout", data={"csrf_token": form_token(client)})
    assert client.post(f"/office/objections/{number}/accept",
                       data={"csrf_token": form_token(client)}).status_code == 401


def test_workers_starting_at_once_agree_on_the_session_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from web.csrf import SESSION_KEY_FILE, session_secret

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: session_secret(tmp_path / "keys"), range(32)))
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    assert (tmp_path / "keys" / SESSION_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "keys").iterdir()] == [SESSION_KEY_FILE]
    # the keys folder, made as the key store makes it: a window started before `credit init`
    # leaves a folder init accepts
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_a_long_file_shows_a_page_of_each_group_newest_first(
        client: FlaskClient, city: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from web import window as pages

    monkeypatch.setattr(pages, "PAGE", 1)
    short = html(client.get(f"/subject/{ENTERPRISE.key}"))
    penalties = short.split('id="records-penalty"')[1].split("</section>")[0]
    assert penalties.count('class="record"') == 1 and "<small>2</small>" in penalties
    newest = max(re.findall(r'<span class="date">(\d{4}-\d{2}-\d{2})</span>',
                            html(client.get(f"/subject/{ENTERPRISE.key}?all=1"))))
    assert newest in penalties  # the newest first
    assert 'class="show-all"' in penalties
    whole = html(client.get(f"/subject/{ENTERPRISE.key}", query_string={"all": "1"}))
    assert whole.split('id="records-penalty"')[1].split("</section>")[0].count(
        'class="record"') == 2


def test_a_past_day_offers_no_report_but_the_way_back_to_today(client: FlaskClient,
                                                               city: Settings) -> None:
    past = html(client.get(f"/subject/{ENTERPRISE.key}", query_string={"as_of": "2026-01-02"}))
    report = past.split('id="report"')[1].split("</section>")[0]
    assert 'id="issue-report"' not in report and f'href="/subject/{ENTERPRISE.key}"' in report
