"""Every refusal of the API as ``application/problem+json`` (RFC 9457): a title, the status, a
detail in one sentence, and where it applies the fields or lines at fault. Never a trace."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from workflows.importer import ImportRefused
from workflows.outcomes import kind_of_refusal

STATUS = {"unauthenticated": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
          "invalid": 422, "unavailable": 503}
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Not permitted",
          404: "Not found", 405: "Method not allowed", 409: "Conflict with the ledger",
          413: "Request too large", 415: "Unsupported media type", 422: "Cannot be processed",
          429: "Too many requests", 500: "Internal error", 503: "Database unavailable"}


def problem(status: int, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail, **extra}
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="credit-ledger"'
    return response


def is_api() -> bool:
    return request.path.startswith("/api/")


def from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if messages:  # webargs: the fields at fault, by where they came from
        return problem(status, "the request's fields are not valid",
                       errors=_flatten(messages))
    return problem(status, exc.description or TITLES.get(status, "error"))


def from_refusal(exc: Exception) -> Response | None:
    kind = kind_of_refusal(exc)
    if kind is None:
        return None
    status = STATUS[kind]
    if kind == "unauthenticated":
        current_app.logger.info("token refused: %s", exc)  # the reason stays in the log
        return problem(401, "the bearer token is missing, unknown, revoked or not genuine")
    if isinstance(exc, ImportRefused):
        return problem(status, f"{len(exc.errors)} bad row(s); nothing was written",
                       errors=[{"line": e.line, "reason": e.reason} for e in exc.errors[:1000]])
    return problem(status, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _flatten(messages: Any, where: str = "") -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            place = f"{where}.{key}" if where else str(key)
            found.extend(_flatten(value, place))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        found.extend({"field": where, "reason": m} for m in messages)
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            found.extend(_flatten(value, f"{where}[{index}]"))
    else:
        found.append({"field": where, "reason": str(messages)})
    return found


def install(app: Flask, page_http: Any) -> None:
    """API paths answer in problem documents; the window's pages keep their own
    (``page_http``, the handler the window registered before the API's library replaced it)."""

    def http_error(exc: HTTPException) -> Any:
        if is_api():
            return from_http(exc)
        return page_http(exc) if page_http else exc

    def any_error(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        refused = from_refusal(exc)
        if is_api():
            if refused is not None:
                return refused
            current_app.logger.exception("API request failed")
            return problem(500, "the request failed inside the platform (it is logged); a write "
                                "is either wholly in the ledger or not at all")
        raise exc

    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, any_error)
