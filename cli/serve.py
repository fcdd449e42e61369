"""`credit serve`: the 信用临安 window on this machine (development; production: gunicorn)."""

from __future__ import annotations

import contextlib
import logging

import click

from cli.common import credit, settings


@credit.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Serve the 信用临安 window (search, subject pages, reports, verify, transparency) with
    Flask's development server; Ctrl-C stops it. In production run gunicorn with
    web/gunicorn.conf.py (docs/SERVING.md)."""
    from web import create_app

    app = create_app(settings())  # a missing ledger is said here, before listening
    with app.app_context():
        from web.app import door

        with door().window():
            pass
    click.echo(f"信用临安 window at http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    # the development server logs every request with its query string, which may carry a
    # searched name or number: keep its own log to warnings
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    click.echo("stopped", err=True)
