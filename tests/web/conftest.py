"""The window over a copy of the demo city, through Flask's test client."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from ledger.settings import Settings
from web import create_app


@pytest.fixture
def app(city: Settings, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("CREDIT_REPORTS_DIR", str(tmp_path_factory.mktemp("reports")))
    made = create_app(city)
    made.config["TESTING"] = True
    yield made
    made.extensions["credit_door"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def subjects(settings: Settings, where: str) -> list[dict[str, object]]:
    """Rows of the subjects read model (``where`` is the test's own SQL)."""
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(
                f"SELECT * FROM proj_subjects WHERE {where} ORDER BY subject")).mappings()]
    finally:
        engine.dispose()


def person_numbers(settings: Settings) -> list[str]:
    return [str(r["subject"]).removeprefix("rid:")
            for r in subjects(settings, "subject LIKE 'rid:%'")]


def html(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined,no-any-return]


ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
