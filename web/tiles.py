"""The log over HTTP as C2SP tlog-tiles, under the prefix ``/log`` (the checkpoint origin is the
log's scheme-less URL: ``credit-ledger.linan/log``): ``/log/checkpoint``, ``/log/tile/<L>/<N>``
and ``/log/tile/entries/<N>``, each with ``.p/<W>`` for a partial one. Static bytes, cacheable:
a tile never changes once served; the checkpoint does, every few seconds at most."""

from __future__ import annotations

from flask import Blueprint, Response

from web.app import door
from workflows.tiles import LogTiles, TileRefused

tiles = Blueprint("tiles", __name__, url_prefix="/log")
IMMUTABLE = "public, max-age=31536000, immutable"


def _bytes(body: bytes, cache: str, kind: str = "application/octet-stream") -> Response:
    response = Response(body, mimetype=kind)
    response.headers["Cache-Control"] = cache
    response.headers["Access-Control-Allow-Origin"] = "*"  # monitors may run in a browser
    return response


def _missing(reason: str) -> Response:
    response = Response(reason + "\n", status=404, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@tiles.route("/checkpoint")
def checkpoint() -> Response:
    with door().window() as win:
        latest = LogTiles(win.ledger).checkpoint()
    if latest is None:
        return _missing("the log has no checkpoint yet")
    response = _bytes(latest[1].encode("utf-8"), "public, max-age=2", "text/plain")
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    return response


@tiles.route("/tile/<path:where>")
def tile(where: str) -> Response:
    try:
        with door().window() as win:
            body = LogTiles(win.ledger).resource(f"tile/{where}")
    except TileRefused as exc:
        return _missing(str(exc))
    if body is None:
        return _missing("no such tile in the log's latest checkpoint")
    return _bytes(body, IMMUTABLE)
