"""A rate limit on the API: each caller — a token, or without one the client's address — gets
``API_RATE_PUBLIC`` or ``API_RATE_TOKEN`` requests per minute, counted in a sliding window per
process (gunicorn's workers each keep their own count: the limit a caller meets is that times
the workers at most). Over it: 429 with ``Retry-After``, nothing done."""

from __future__ import annotations

import threading
import time
from collections import deque

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from web.api.problems import problem

WINDOW = 60.0  # seconds
DEFAULTS = {"API_RATE_PUBLIC": 120, "API_RATE_TOKEN": 1200}  # requests per window


class SlidingWindow:
    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, limit: int, now: float) -> float | None:
        """None if admitted; else the seconds until a request would be."""
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - WINDOW:
                seen.popleft()
            if len(seen) >= limit:
                return seen[0] + WINDOW - now
            seen.append(now)
            if len(self._seen) > 100_000:  # forget idle callers
                self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - WINDOW}
            return None


def install(app: Flask) -> None:
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    window = SlidingWindow()

    @app.before_request
    def limit() -> Response | None:
        if not request.path.startswith("/api/") or request.path in ("/api/openapi.json",
                                                                     "/api/docs"):
            return None
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            # the token's id part: one count per token (its secret is not a key of a dict)
            key, rate = "t:" + header[7:].split(".", 1)[0][:40], "API_RATE_TOKEN"
        else:
            key, rate = "a:" + (request.remote_addr or "?"), "API_RATE_PUBLIC"
        wait = window.admit(key, int(current_app.config[rate]), time.monotonic())
        if wait is None:
            return None
        response = problem(429, f"more than {current_app.config[rate]} requests a minute; "
                                f"try again in {max(1, round(wait))} s")
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
