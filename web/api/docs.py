"""The API's docs page, served by the app from its own OpenAPI document (no CDN, no script)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

blp = Blueprint("api_docs", __name__)


@blp.get("/api/docs")
def page() -> str:
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    operations = [(path, method.upper(), op) for path, item in sorted(spec["paths"].items())
                  for method, op in item.items() if method in ("get", "post", "put", "delete")]
    return render_template("api_docs.html", spec=spec, operations=operations)
