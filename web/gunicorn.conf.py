"""gunicorn settings for the 信用临安 window (docs/SERVING.md):

    .venv/bin/gunicorn -c web/gunicorn.conf.py

Sync workers, one request each at a time; every worker opens its own ledger connection after
the fork (the app opens it at its first request, so nothing is shared across the fork)."""

from __future__ import annotations

import multiprocessing
import os

wsgi_app = "web.wsgi:app"
bind = os.environ.get("CREDIT_WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CREDIT_WEB_WORKERS", str(multiprocessing.cpu_count() * 2)))
worker_class = "sync"
timeout = 60  # a report of a subject with tens of thousands of events takes seconds
graceful_timeout = 20
max_requests = 10_000  # renew workers now and then; jitter keeps them from renewing at once
max_requests_jitter = 1_000
limit_request_line = 8190
accesslog = "-"
# the path only: a query string could carry a searched name
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
