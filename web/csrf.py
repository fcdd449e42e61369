"""Sessions and CSRF protection for the window's forms.

The session cookie is signed with a key kept beside the platform's keys (``web-session.key``,
mode 0600, made at the first start), so every gunicorn worker signs and reads the same cookies.
Every form carries ``csrf_token``, the session's own random token; a POST outside the API (which
uses bearer tokens, never cookies) without the matching token is refused before anything runs."""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from flask import Flask, abort, request, session

SESSION_KEY_FILE = "web-session.key"


def session_secret(folder: Path) -> bytes:
    """The key that signs session cookies, made at the first start. Written whole to a
    temporary file and linked into place (atomic, never replacing): a worker starting at the
    same moment reads either nothing yet or the whole key, and all agree on the winner's."""
    path = folder / SESSION_KEY_FILE
    if path.exists():
        return path.read_bytes()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # the keys folder (KeyStore's mode)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".web-session-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
        os.chmod(temporary, 0o600)
        with contextlib.suppress(FileExistsError):  # another worker's key is in place
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_bytes()


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def install(app: Flask, folder: Path) -> None:
    app.secret_key = session_secret(folder)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=os.environ.get("CREDIT_WEB_SECURE_COOKIES") == "1")
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def check_form() -> None:
        if request.method != "POST" or request.path.startswith("/api/"):
            return
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            abort(400, "the form is out of date or was not sent from this site: reload the "
                       "page and send it again")
