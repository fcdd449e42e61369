"""Schemathesis over the whole OpenAPI document, on SQLite and PostgreSQL: for generated
requests to every operation, as the credit office, no 5xx; every 4xx a problem document; a
refused request writes nothing; and the ledger verifies afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ledger.settings import Settings
from tests.conftest import copy_of
from tests.e2e.test_cli import Credit
from tests.web.test_api import issue
from web import create_app

EXAMPLES = 12  # per operation


@pytest.fixture
def api(backend: str, template_root: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with copy_of("city", backend, tmp_path) as city:
        monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path / "reports"))
        app = create_app(city)
        app.config.update(API_RATE_PUBLIC=10**6, API_RATE_TOKEN=10**6)
        token = issue(city, "credit-office")
        yield {"app": app, "city": city, "token": token,
               "schema": schemathesis.openapi.from_wsgi("/api/openapi.json", app)}
        app.extensions["credit_door"].close()
        verified = Credit(city.database_url, city.keys_dir)("verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_no_request_breaks_the_api(api: dict[str, Any]) -> None:
    city: Settings = api["city"]
    credit = Credit(city.database_url, city.keys_dir)
    auth = {"Authorization": f"Bearer {api['token']}"}
    operations = [result.ok() for result in api["schema"].get_all_operations()]
    assert len(operations) >= 20, [o.label for o in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            before = credit.events()
            response = case.call(headers=auth)
            where = (case.method, case.formatted_path, response.status_code,
                     response.text[:300])
            assert response.status_code < 500, where
            if response.status_code >= 400:
                kinds = [v for k, v in response.headers.items() if k.lower() == "content-type"]
                assert "application/problem+json" in str(kinds), where
                assert credit.events() == before, ("a refused request wrote", *where)

        call()
