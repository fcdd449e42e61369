"""The window under load: gunicorn (2 sync workers) over the bench store, loaded from a separate
process on loopback (benchmarks/web_load.py), beside a bare Flask route on the same gunicorn.

    python -m benchmarks.web_probe DATABASE_URL KEYS_DIR

Prints JSON: subject page p50/p99 at 50 clients, search p99 at 50 clients, the as-of view of the
1,000-event subject p50 (one client), requests/s of each, and the bare route's requests/s."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

from benchmarks.bench import HISTORY_SUBJECTS

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
CLIENTS = 50
REQUESTS = 3000  # per run, at most
SECONDS = 15.0  # per run, at most


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(app: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "web" / "gunicorn.conf.py"),
         "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--access-logfile",
         "/dev/null", "--error-logfile", "-", "--log-level", "warning", app],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start: {process.stderr.read()}"
                                     if process.stderr else "gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def load(base: str, paths: list[str], clients: int, requests: int = REQUESTS,
         seconds: float = SECONDS) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as file:
        file.write("\n".join(paths))
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.web_load", base, file.name,
                              str(clients), str(requests), str(seconds)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
    finally:
        os.unlink(file.name)
    result: dict[str, float] = json.loads(out.stdout)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed under load: {paths[0]}")
    return result


def main() -> None:
    url, keys_dir = sys.argv[1], sys.argv[2]
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT subject, name FROM proj_subjects WHERE subject LIKE "
                                 "'uscc:%' ORDER BY subject LIMIT 2000")).all()
    engine.dispose()
    subjects = [f"/subject/{key}" for key, _ in rows]
    searches = [f"/?q={quote(name[2:5])}" for _, name in rows[:500] if name]
    big = HISTORY_SUBJECTS[1000].key
    as_of = [f"/subject/{big}?as_of={year}-{month:02d}-15" for year in range(2017, 2026)
             for month in (3, 9)]
    env = {"CREDIT_DATABASE_URL": url, "CREDIT_KEYS_DIR": keys_dir,
           "CREDIT_REPORTS_DIR": tempfile.mkdtemp(prefix="credit-bench-reports-")}
    with gunicorn("web.wsgi:app", env) as base:
        load(base, subjects[:200], 4, 400)  # every worker warm: connections, first pages
        subject = load(base, subjects, CLIENTS)
        search = load(base, searches, CLIENTS)
        as_of_view = load(base, as_of, 1, 200)
    with gunicorn("benchmarks.hello_app:app", {}) as base:
        hello = load(base, ["/"], CLIENTS)
    print(json.dumps({
        "web_subject_p50_ms": subject["p50_ms"], "web_subject_p99_ms": subject["p99_ms"],
        "web_search_p99_ms": search["p99_ms"], "web_asof_p50_ms": as_of_view["p50_ms"],
        "web_requests_per_s": subject["requests_per_s"],
        "web_search_requests_per_s": search["requests_per_s"],
        "web_hello_requests_per_s": hello["requests_per_s"],
        "web_hello_p50_ms": hello["p50_ms"],
    }))


if __name__ == "__main__":
    main()
