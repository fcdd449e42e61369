"""The witness's own HTTP service (C2SP tlog-witness): ``POST /add-checkpoint`` and nothing
else. It runs as its own process with its own key (`credit witness serve`, `credit monitor
serve`), apart from the platform's window."""

from __future__ import annotations

from typing import Protocol

from flask import Flask, Response, request

from workflows.witness import Answer


class Cosigner(Protocol):
    """A witness, or a monitor (a witness that mirrors the log first)."""

    def add_checkpoint(self, request: bytes) -> Answer: ...

MAX_REQUEST = 64 * 1024  # an old-size line, at most 63 hashes, and a checkpoint


def create_witness_app(witness: Cosigner) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST

    @app.post("/add-checkpoint")
    def add_checkpoint() -> Response:
        answer = witness.add_checkpoint(request.get_data(cache=False))
        return Response(answer.body, status=answer.status, content_type=answer.content_type)

    return app
