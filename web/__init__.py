"""The 信用临安 window: the public's lookup, the credit report and its check, transparency.

``create_app`` wires the Flask app: one ledger per process, opened at its first request (so a
gunicorn worker opens its own after the fork), Flask-Babel for Chinese (the default) and
English, and the ``window`` blueprint. The REST API is a later issue.
"""

from __future__ import annotations

from web.app import create_app

__all__ = ["create_app"]
