"""The HTTP API (OpenAPI 3 at /api/openapi.json, a docs page at /api/docs): the same workflows
as the CLI, behind bearer tokens (`credit tokens`), every refusal a problem document."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from web.api import (
    audit,
    cases,
    checks,
    docs,
    limits,
    problems,
    records,
    registry,
    subjects,
    tokens,
)


def register_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE="信用临安 Credit Ledger API", API_VERSION="1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "A token from `credit tokens issue PRINCIPAL`"}}}})
    pages = app.error_handler_spec[None][None].get(HTTPException)  # the window's, kept
    api = Api(app)
    for blueprint in (records.blp, cases.blp, subjects.blp, checks.blp, audit.blp,
                      registry.blp, tokens.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.blp)
    problems.install(app, pages)
    limits.install(app)
    return api
