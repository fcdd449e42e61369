"""The window under load: gunicorn (2 sync workers) over the bench store, loaded from a separate
process on loopback (benchmarks/web_load.py), beside a bare Flask route on the same gunicorn.

    python -m benchmarks.web_probe DATABASE_URL KEYS_DIR SECRET

Prints JSON: subject page p50/p99 at 50 clients, search p99 at 50 clients, the as-of view of the
1,000-event subject p50 (one client), requests/s of each, and the bare route's requests/s;
and the API: a batch of 1,000 records over HTTP beside the same rows imported in-process (the
CLI's importer), single-record submits and credit checks at 10 concurrent clients."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from benchmarks.bench import HISTORY_SUBJECTS
from domain.authorities import LINAN_AUTHORITIES
from keys.signer import public_key_from_pem
from keys.store import secret_variable
from ledger.application import CreditLedger
from ledger.settings import DEFAULT_ORIGIN as ORIGIN
from ledger.settings import Settings
from projections.runner import ProjectionRunner
from workflows.mirror import Mirror, http_fetch
from workflows.submissions import submit_rows
from workflows.tokens import Tokens
from workflows.witnesses import WitnessConfig, http_post, publish

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
CLIENTS = 50
REQUESTS = 3000  # per run, at most
SECONDS = 15.0  # per run, at most
PACED_PER_S = 20.0  # open-loop arrivals: ten departments, one write each every half second


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
         seconds: float = SECONDS, token: str | None = None,
         rate: float | None = None) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as file:
        file.write("\n".join(paths))
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.web_load", base, file.name,
                              str(clients), str(requests), str(seconds), token or "-",
                              *([str(rate)] if rate else [])],
                             cwd=ROOT, capture_output=True, text=True, check=True)
    finally:
        os.unlink(file.name)
    result: dict[str, float] = json.loads(out.stdout)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed under load: {paths[0]}")
    return result


def record(n: int, subject: str) -> dict[str, Any]:
    return {"subject": subject, "subject_name": f"压测主体{n % 97}", "item_code": "TAX-PENALTY",
            "decision_number": f"临税罚〔2026〕WEB{n}号", "decision_date": "2026-06-01",
            "summary": "逾期申报"}


def api_figures(base: str, url: str, keys_dir: str, secret: str,
                subjects: list[str]) -> dict[str, float]:
    """Batch, submit and check over HTTP, and the same batch through the importer here."""
    settings = Settings(database_url=url, keys_dir=Path(keys_dir), passphrase=secret)
    ledger = CreditLedger(settings)
    try:
        tax = Tokens(ledger).issue("credit-office", "tax").bearer
        agency = Tokens(ledger).issue("credit-office", "agency:公共资源交易中心").bearer
        rows = [record(n, subjects[n % len(subjects)]) for n in range(1000)]
        ProjectionRunner(ledger).catch_up()
        started = time.perf_counter()  # as `credit import` runs: the rows, then the read models
        summary = submit_rows(ledger, "tax", rows)
        ProjectionRunner(ledger).catch_up()
        import_rate = summary.events / (time.perf_counter() - started)
    finally:
        ledger.close()
    batch = "".join(json.dumps(record(n, subjects[n % len(subjects)]), ensure_ascii=False) + "\n"
                    for n in range(1000, 2000)).encode("utf-8")
    started = time.perf_counter()
    answer = urllib.request.urlopen(urllib.request.Request(
        base + "/api/records/batch", data=batch, method="POST",
        headers={"Authorization": f"Bearer {tax}", "Content-Type": "application/x-ndjson"}),
        timeout=300)
    written = json.loads(answer.read())
    batch_rate = written["events"] / (time.perf_counter() - started)
    submits = [f"POST /api/records {json.dumps(record(n, subjects[n % len(subjects)]), ensure_ascii=False)}"
               for n in range(2000, 2600)]
    load(base, submits[:20], 2, 20, SECONDS, tax)  # each worker's first write: tables, caches
    submit = load(base, submits[20:], 10, 580, SECONDS, tax)
    paced = [f"POST /api/records {json.dumps(record(n, subjects[n % len(subjects)]), ensure_ascii=False)}"
             for n in range(2600, 2900)]
    submit_paced = load(base, paced, 10, 300, SECONDS, tax, rate=PACED_PER_S)
    checks = ["POST /api/checks " + json.dumps({"subject": subjects[n % len(subjects)],
                                                 "matter": "procurement",
                                                 "case_number": f"BENCH-{n}"})
              for n in range(900)]
    load(base, checks[:20], 2, 20, SECONDS, agency)
    check = load(base, checks[20:600], 10, 580, SECONDS, agency)
    check_paced = load(base, checks[600:], 10, 300, SECONDS, agency, rate=PACED_PER_S)
    return {"api_batch_events_per_s": batch_rate, "api_import_events_per_s": import_rate,
            "api_submit_p99_ms": submit["p99_ms"], "api_submit_p50_ms": submit["p50_ms"],
            "api_submit_per_s": submit["requests_per_s"],
            "api_submit_paced_p99_ms": submit_paced["p99_ms"],
            "api_check_p99_ms": check["p99_ms"], "api_check_p50_ms": check["p50_ms"],
            "api_check_per_s": check["requests_per_s"],
            "api_check_paced_p99_ms": check_paced["p99_ms"]}


@contextmanager
def cosigners(base: str, folder: Path) -> Iterator[list[WitnessConfig]]:
    """Two witnesses and a monitor of the log at ``base``, each `credit … serve` in its own
    process, as the platform's configuration names them."""
    platform = folder / "platform.pem"
    platform.write_bytes(urllib.request.urlopen(base + "/transparency/platform.pem",
                                                timeout=30).read())
    processes: list[subprocess.Popen[bytes]] = []
    configs: list[WitnessConfig] = []
    for name, kind in (("court.hangzhou/witness", "witness"),
                       ("commission.linan/witness", "witness"),
                       ("audit.zhejiang/monitor", "monitor")):
        key = folder / f"{kind}-{len(configs)}.key"
        public = subprocess.run([sys.executable, "-m", "cli", "witness", "keygen", "--key",
                                 str(key)], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout
        port = free_port()
        extra = (["--log-url", base + "/log", "--into",
                  f"sqlite:///{folder / f'monitor-{port}.db'}"] if kind == "monitor" else [])
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "cli", kind, "serve", "--name", name, "--key", str(key),
             "--origin", ORIGIN, "--log-key", str(platform), "--state",
             str(folder / f"state-{port}.json"), "--port", str(port), *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        configs.append(WitnessConfig(name, f"http://127.0.0.1:{port}",
                                     public_key_from_pem(public.encode())))
    try:
        for config in configs:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(config.url + "/add-checkpoint", timeout=2)
                except urllib.error.HTTPError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{config.name} did not start") from None
                    time.sleep(0.1)
        yield configs
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def publish_figures(base: str, url: str, keys_dir: str, secret: str) -> dict[str, float]:
    """Publishing a new checkpoint to two witnesses, and to the monitor (whose mirror then
    verifies that checkpoint: no new entries, the tree and the chain map), over loopback."""
    folder = Path(tempfile.mkdtemp(prefix="credit-bench-witnesses-"))
    ledger = CreditLedger(Settings(database_url=url, keys_dir=Path(keys_dir), passphrase=secret))
    try:
        witnesses: list[float] = []
        monitor: list[float] = []
        together: list[float] = []
        with cosigners(base, folder) as configs:
            # first contact: the monitor's mirror catches up with the whole log (excluded)
            first = publish(ledger, configs, lambda url, body: http_post(url, body, 600))
            if any(d.cosignature is None for d in first):
                raise SystemExit(f"a cosigner refused: {[d.outcome for d in first]}")
            for _ in range(20):
                ledger.checkpoint()
                started = time.perf_counter()
                done = publish(ledger, configs[:2])
                witnesses.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                done += publish(ledger, configs[2:])
                monitor.append((time.perf_counter() - started) * 1000)
                ledger.checkpoint()
                started = time.perf_counter()
                done += publish(ledger, configs)  # the three asked at once
                together.append((time.perf_counter() - started) * 1000)
                if any(d.cosignature is None for d in done):
                    raise SystemExit(f"a cosigner refused: {[d.outcome for d in done]}")
        return {"publish_witnesses_p50_ms": statistics.median(witnesses),
                "publish_monitor_p50_ms": statistics.median(monitor),
                "publish_all_p50_ms": statistics.median(together)}
    finally:
        ledger.close()
        shutil.rmtree(folder, ignore_errors=True)


def mirror_figures(base: str) -> dict[str, float]:
    """`credit mirror`'s first catch-up of the whole log through the window's tiles, into a
    SQLite copy: the events verified and kept per second."""
    folder = Path(tempfile.mkdtemp(prefix="credit-bench-mirror-"))
    try:
        key = urllib.request.urlopen(base + "/transparency/platform.pem", timeout=30).read()
        copy = Mirror(f"sqlite:///{folder / 'mirror.db'}", public_key_from_pem(key))
        try:
            started = time.perf_counter()
            report = copy.sync(http_fetch(base + "/log"))
            elapsed = time.perf_counter() - started
        finally:
            copy.close()
        return {"mirror_events_per_s": report.added / elapsed}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    url, keys_dir, secret = sys.argv[1], sys.argv[2], sys.argv[3]
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
    reports = tempfile.TemporaryDirectory(prefix="credit-bench-reports-")  # gone afterwards
    env = {"CREDIT_DATABASE_URL": url, "CREDIT_KEYS_DIR": keys_dir,
           "CREDIT_REPORTS_DIR": reports.name,
           **{secret_variable(a.code): secret for a in LINAN_AUTHORITIES}}
    with reports, gunicorn("web.wsgi:app", env) as base:
        load(base, subjects[:200], 4, 400)  # every worker warm: connections, first pages
        subject = load(base, subjects, CLIENTS)
        search = load(base, searches, CLIENTS)
        as_of_view = load(base, as_of, 1, 200)
        api = api_figures(base, url, keys_dir, secret, [key for key, _ in rows[:300]])
        mirrored = mirror_figures(base)
        published = publish_figures(base, url, keys_dir, secret)
    with gunicorn("benchmarks.hello_app:app", {}) as base:
        hello = load(base, ["/"], CLIENTS)
    print(json.dumps({
        "web_subject_p50_ms": subject["p50_ms"], "web_subject_p99_ms": subject["p99_ms"],
        "web_search_p99_ms": search["p99_ms"], "web_asof_p50_ms": as_of_view["p50_ms"],
        "web_requests_per_s": subject["requests_per_s"],
        "web_search_requests_per_s": search["requests_per_s"],
        "web_hello_requests_per_s": hello["requests_per_s"],
        "web_hello_p50_ms": hello["p50_ms"],
        **api, **mirrored, **published,
    }))


if __name__ == "__main__":
    main()
