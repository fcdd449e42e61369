"""The WSGI entry point for production servers: ``gunicorn -c web/gunicorn.conf.py``
(configuration from the ``CREDIT_*`` variables, as for the CLI)."""

from __future__ import annotations

from web import create_app

app = create_app()
