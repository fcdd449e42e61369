"""A real browser on the window: Debian's chromium (/usr/bin/chromium, installed by .ci/run)
driven by Playwright, against the app served on a loopback port by a thread of the test.

Without chromium the browser tests are skipped with the reason, except under CI=true, where
they fail (CI must run them). Playwright never downloads a browser here."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from ledger.settings import Settings
from web import create_app

CHROMIUM = os.environ.get("CREDIT_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def require_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    message = (f"no chromium at {CHROMIUM}: install Debian's (`apt-get install chromium`, as "
               ".ci/run does) or set CREDIT_TEST_CHROMIUM")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def served(city: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The window over a copy of the demo city, at http://127.0.0.1:PORT."""
    require_chromium()
    monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "reports"))
    app = create_app(city)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["credit_door"].close()


@pytest.fixture
def browser() -> Iterator[object]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A screenshot of every open page of a failed browser test, in var/screenshots/."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    launched = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if launched is None:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for c, context in enumerate(launched.contexts):  # type: ignore[attr-defined]
        for p, page in enumerate(context.pages):
            path = SCREENSHOTS / f"{item.name}-{c}-{p}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                report.sections.append(("screenshot", str(path)))
            except Exception as exc:  # a crashed page: say so, keep the test's own failure
                report.sections.append(("screenshot", f"none: {exc}"))
