"""`make bench`: signed ingest and `verify` on a synthetic city, beside this machine's own limits.

    python -m benchmarks.bench [--db sqlite|postgresql] [--events N] [--batch B]
    python -m benchmarks.bench --growth [--db ...] [--sizes 100000,300000,1000000]
                                   (the cost per event as one store grows: benchmarks/growth.py)

Prints a table (figure, limit measured in the same run, ratio) and merges the figures into
benchmarks/results/latest.json as flat keys. Targets live here, never in unit tests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import growth
from benchmarks.city import as_autovacuum_leaves_it, start_city
from domain.identifiers import SubjectRef
from workflows.demo_city import make_resident_id, make_uscc
from workflows.policy_files import bundled_policies
from workflows.services import RecordSubmission

RESULTS = Path(__file__).parent / "results" / "latest.json"
PG_ADMIN_URL = os.environ.get("CREDIT_BENCH_PG_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PASSPHRASE = "benchmark-passphrase-not-secret"
CORES = os.cpu_count() or 1

HISTORY_SUBJECTS = {20: SubjectRef("uscc", "91350100M000100Y43"),
                    1000: SubjectRef("uscc", "91110000600037341L")}
# the subject whose extract the bench issues and verifies: 49 records + its registration = 50 events
EXTRACT_SUBJECT = SubjectRef("uscc", make_uscc(random.Random(50), "330112"))
EXTRACT_RECORDS = 49

TARGETS = {
    "ingest_events_per_s": {"sqlite": 10_000, "postgresql": 6_000},
    "verify_events_per_s": {"sqlite": 12_000, "postgresql": 12_000},
    "verify_peak_rss_mb": {"sqlite": 300, "postgresql": 300},
    "rebuild_events_per_s": {"sqlite": 50_000, "postgresql": 30_000},
    "rebuild_peak_rss_mb": {"sqlite": 300, "postgresql": 300},
    "history_p50_ms_20_events": {"sqlite": 5, "postgresql": 5},
    "history_p50_ms_1000_events": {"sqlite": 50, "postgresql": 50},
    "extract_build_ms_p50": {"sqlite": 50, "postgresql": 50},
    "extract_verify_ms_p50": {"sqlite": 25, "postgresql": 25},
    "web_subject_p50_ms": {"sqlite": 20, "postgresql": 20},
    "web_subject_p99_ms": {"sqlite": 100, "postgresql": 100},
    "web_search_p99_ms": {"sqlite": 100, "postgresql": 100},
    "web_asof_p50_ms": {"sqlite": 60, "postgresql": 60},
    "api_submit_p99_ms": {"sqlite": 50, "postgresql": 50},
    "api_check_p99_ms": {"sqlite": 30, "postgresql": 30},
}
CLIENTS_TEXT = "50 clients, gunicorn 2 workers"
LOWER_IS_BETTER = ("_mb", "_ms_20_events", "_ms_1000_events", "_ms_p50", "_p50_ms", "_p99_ms")


# -- this machine's limits --------------------------------------------------------------------


def raw_sign_per_s(n: int = 20_000) -> float:
    key = Ed25519PrivateKey.generate()
    message = os.urandom(600)
    start = time.perf_counter()
    for _ in range(n):
        key.sign(message)
    return n / (time.perf_counter() - start)


def raw_verify_per_s(n: int = 5_000) -> float:
    key = Ed25519PrivateKey.generate()
    message = os.urandom(600)
    signature = key.sign(message)
    public = key.public_key()
    start = time.perf_counter()
    for _ in range(n):
        public.verify(signature, message)
    return n / (time.perf_counter() - start)


def raw_verify_all_cores_per_s(n: int = 20_000) -> float:
    """Raw Ed25519 verify on every core at once, summed: the ceiling of a whole-store verify on
    this machine (the cores of a shared host run slower together than one alone)."""
    with ProcessPoolExecutor(CORES, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(raw_verify_per_s, [100] * CORES))  # every process started
        return sum(pool.map(raw_verify_per_s, [n] * CORES))


def raw_insert_rows_per_s(folder: Path, n: int = 200_000) -> float:
    """SQLite executemany of rows shaped like stored events, one transaction."""
    db = sqlite3.connect(folder / "raw.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, oid BLOB, v INTEGER, topic TEXT, "
                "state BLOB)")
    state = os.urandom(600)
    rows = [(uuid.uuid4().bytes, 1, "domain.records:CreditRecord.Submitted", state)
            for _ in range(n)]
    start = time.perf_counter()
    db.executemany("INSERT INTO t (oid, v, topic, state) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    elapsed = time.perf_counter() - start
    db.close()
    return n / elapsed


def raw_read_rows_per_s(url: str) -> float:
    """The driver's own rate reading the events table: the limit any reader of the log has."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            started = time.perf_counter()
            cursor.execute("SELECT id, originator_id, originator_version, topic, state "
                           "FROM credit_events")
            rows = 0
            while batch := cursor.fetchmany(10_000):
                rows += len(batch)
            return rows / (time.perf_counter() - started)
    finally:
        engine.dispose()


# -- the ledger -------------------------------------------------------------------------------


@contextmanager
def scratch(keep: bool) -> Iterator[Path]:
    """A folder for the run's store and keys, removed afterwards unless ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix="credit-bench-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def database(kind: str, folder: Path, keep: bool) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = f"credit_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def submissions(n: int, seed: int = 1, growing: bool = False) -> Iterator[RecordSubmission]:
    """A synthetic city's records: subjects with valid identifiers, every department's items.

    Its subjects are drawn at random from a quarter as many as there are records, so new ones
    thin out as it fills; ``growing``: a city that registers subjects at a steady pace instead
    (every fifth record names a new subject), so that what changes with the size of the ledger
    is only its size (``--growth``)."""
    rng = random.Random(seed)
    subjects = [SubjectRef("uscc", make_uscc(rng, "330112")) for _ in range(max(n // 5, 1))]
    subjects += [SubjectRef("rid", make_resident_id(rng, "330112")) for _ in range(max(n // 20, 1))]
    if growing:
        rng.shuffle(subjects)
    catalogue = next(d for d in bundled_policies() if d["kind"] == "catalogue")
    items = [(i["department"], i["code"], i["name_zh"]) for i in catalogue["items"]]
    start = date(2016, 1, 4)
    # two subjects whose history the bench times: 20 and 1,000 records
    special = [(HISTORY_SUBJECTS[size], size) for size in (20, 1000)]
    special.append((EXTRACT_SUBJECT, EXTRACT_RECORDS))
    fixed = [subject for subject, size in special for _ in range(size)]
    for i in range(n):
        department, item_code, title = items[i % len(items)]
        if i < len(fixed):
            subject = fixed[i]
        elif growing:  # subject k is new at record 5k; before it, the ones already named
            subject = subjects[i // 5] if i % 5 == 0 else subjects[rng.randrange(i // 5 + 1)]
        else:
            subject = subjects[rng.randrange(len(subjects))]
        yield RecordSubmission(
            actor=department, subject=subject, item_code=item_code,
            decision_number=f"临{department}罚〔{i // 1000}〕{i}号",
            decision_date=start + timedelta(days=rng.randrange(3900)),
            summary=title, details={"amount": f"{rng.randrange(100, 500000)}.00"},
            subject_name=f"主体{subject.code[-6:]}",
        )


def ingest(url: str, keys_dir: Path, events: int, batch: int) -> tuple[float, int]:
    """Signed records per second through CreditServices.submit_records, and the events stored."""
    app, services = start_city(url, keys_dir, PASSPHRASE)
    try:
        pending: list[RecordSubmission] = []
        before = app.event_count()
        started = time.perf_counter()
        for submission in submissions(events):
            pending.append(submission)
            if len(pending) == batch:
                services.submit_records(pending)
                pending = []
                if sys.stderr.isatty():
                    print(f"\r  ingest {app.event_count() - before}/{events}", end="",
                          file=sys.stderr)
        if pending:
            services.submit_records(pending)
        elapsed = time.perf_counter() - started
        if sys.stderr.isatty():
            print(file=sys.stderr)
        written = app.event_count() - before
        as_autovacuum_leaves_it(app.engine)
        return written / elapsed, app.event_count()
    finally:
        app.close()


def verify_in_child(url: str) -> dict[str, Any]:
    """Run `verify` in its own process so its peak RSS is its own."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.verify_probe", url],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def rebuild_in_child(url: str, keys_dir: Path, workers: int | None = None) -> dict[str, Any]:
    """Rebuild the subjects read model in its own process (peak RSS: it and its workers)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.rebuild_probe", url, str(keys_dir),
                          *([] if workers is None else [str(workers)])],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def history_p50_ms(url: str, keys_dir: Path) -> dict[int, float]:
    """Median time of a subject's history, timed in a fresh process as `credit history` runs."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.history_probe", url, str(keys_dir)],
                         capture_output=True, text=True, check=True)
    return {int(k): float(v) for k, v in json.loads(out.stdout).items()}


def extract_in_child(url: str, keys_dir: Path) -> dict[str, Any]:
    """Issue and verify the 50-event subject's extract, in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.extract_probe", url, str(keys_dir),
                          PASSPHRASE], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def web_in_child(url: str, keys_dir: Path) -> dict[str, Any]:
    """The window on gunicorn under load from a separate process (benchmarks/web_probe.py)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.web_probe", url, str(keys_dir),
                          PASSPHRASE],
                         capture_output=True, text=True)
    if out.returncode != 0:  # say why, not just that it failed
        raise SystemExit(f"the web probe failed: {out.stderr.strip()[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- report -----------------------------------------------------------------------------------


def save(figures: dict[str, Any]) -> None:
    """Merge the figures into benchmarks/results/latest.json (flat keys)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged.update(figures)
    RESULTS.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    print(f"figures written to {RESULTS}")


def run_growth(args: argparse.Namespace) -> None:
    sizes = sorted(int(size) for size in args.sizes.split(","))
    with scratch(args.keep) as folder:
        print(f"credit-ledger bench, growth: one store on {args.db} through {sizes} events, "
              f"batches of {args.batch}, {CORES} cores")
        sign = raw_sign_per_s()
        check = raw_verify_per_s()
        check_all = raw_verify_all_cores_per_s()
        print(f"raw Ed25519: sign {sign:.0f}/s, verify {check:.0f}/s per core, "
              f"{check_all:.0f}/s on {CORES} cores at once")
        print(growth.HEADER)
        with database(args.db, folder, args.keep) as url:
            keys = folder / "keys"

            def measure(stored: int) -> dict[str, Any]:
                # the machine's speed moves within a run (a shared host: raw verify 5,900 to
                # 9,700/s within minutes), so each size's shares are of raw figures taken
                # beside it: signing right after its ingest window, verifying around its verify
                sign_here = raw_sign_per_s(5_000)
                verify_before = raw_verify_per_s(2_000)
                verified = verify_in_child(url)
                verify_here = (verify_before + raw_verify_per_s(2_000)) / 2
                if not verified["ok"]:
                    raise SystemExit(f"verify failed at {stored} events: {verified['first']}")
                one, two = rebuild_in_child(url, keys, 1), rebuild_in_child(url, keys, 2)
                history = history_p50_ms(url, keys)
                return {"raw_sign_per_s": sign_here, "raw_verify_per_s": verify_here,
                        "verify_us_per_event": 1e6 / verified["events_per_s"],
                        "verify_busy_share": verified["checkers_busy_share"],
                        "verify_peak_rss_mb": verified["peak_rss_mb"],
                        "rebuild_1_events_per_s": one["events_per_s"],
                        "rebuild_2_events_per_s": two["events_per_s"],
                        "rebuild_peak_rss_mb": max(one["peak_rss_mb"], two["peak_rss_mb"]),
                        "history_ms_20": history[20], "history_ms_1000": history[1000]}

            points = growth.grow(url, keys, sizes, args.batch,
                                 lambda n: submissions(n, growing=True), PASSPHRASE, measure)
    save(growth.report(points, sign, check, check_all, CORES, args.db))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--growth", action="store_true",
                        help="grow one store through --sizes and print the cost per event at each")
    parser.add_argument("--sizes", default=",".join(map(str, growth.SIZES)),
                        help="store sizes for --growth, comma-separated")
    args = parser.parse_args(argv)
    if args.growth:
        run_growth(args)
        return

    with scratch(args.keep) as folder:
        print(f"credit-ledger bench: {args.events} signed events on {args.db}, batches of "
              f"{args.batch}, {CORES} cores")
        sign = raw_sign_per_s()
        check = raw_verify_per_s()
        check_all = raw_verify_all_cores_per_s()
        insert = raw_insert_rows_per_s(folder)
        with database(args.db, folder, args.keep) as url:
            ingest_rate, stored = ingest(url, folder / "keys", args.events, args.batch)
            verified = verify_in_child(url)
            raw_read = raw_read_rows_per_s(url)
            rebuilt = rebuild_in_child(url, folder / "keys")
            history = history_p50_ms(url, folder / "keys")
            extracts = extract_in_child(url, folder / "keys")
            web = web_in_child(url, folder / "keys")
        if not verified["ok"]:
            raise SystemExit(f"verify failed on the benchmark store: {verified['first']}")

    figures: dict[str, Any] = {
        "db": args.db,
        "events": stored,
        "ingest_events_per_s": round(ingest_rate),
        "verify_events_per_s": round(verified["events_per_s"]),
        "verify_peak_rss_mb": round(verified["peak_rss_mb"], 1),
        "raw_sign_per_s": round(sign),
        "raw_verify_per_s": round(check),
        "raw_verify_all_cores_per_s": round(check_all),
        "raw_insert_rows_per_s": round(insert),
        "raw_read_rows_per_s": round(raw_read),
        "rebuild_events_per_s": round(rebuilt["events_per_s"]),
        "rebuild_peak_rss_mb": round(rebuilt["peak_rss_mb"], 1),
        "history_p50_ms_20_events": round(history[20], 2),
        "history_p50_ms_1000_events": round(history[1000], 2),
        "extract_build_ms_p50": round(extracts["build_ms_p50"], 2),
        "extract_verify_ms_p50": round(extracts["verify_ms_p50"], 2),
        "extract_bytes": extracts["bytes"],
        "extract_signature_share": round(extracts["signature_share"], 3),
        **{key: round(value, 2) for key, value in web.items()},
        "cores": CORES,
    }
    rows = [
        ("signed ingest, events/s", figures["ingest_events_per_s"],
         f"raw Ed25519 sign {figures['raw_sign_per_s']}/s (1 core)", ingest_rate / sign),
        ("", "", f"raw SQLite executemany {figures['raw_insert_rows_per_s']} rows/s",
         ingest_rate / insert),
        ("verify, events/s", figures["verify_events_per_s"],
         f"raw Ed25519 verify {figures['raw_verify_per_s']}/s x {CORES} cores",
         verified["events_per_s"] / (check * CORES)),
        ("", "", f"raw Ed25519 verify on {CORES} cores at once "
         f"{figures['raw_verify_all_cores_per_s']}/s", verified["events_per_s"] / check_all),
        ("verify peak RSS, MB", figures["verify_peak_rss_mb"], "target < 300 MB",
         figures["verify_peak_rss_mb"] / 300),
        ("rebuild, events/s", figures["rebuild_events_per_s"],
         f"raw {args.db} read {figures['raw_read_rows_per_s']} rows/s",
         rebuilt["events_per_s"] / raw_read),
        ("rebuild peak RSS, MB", figures["rebuild_peak_rss_mb"], "target < 300 MB",
         figures["rebuild_peak_rss_mb"] / 300),
        ("history, 20 events, ms p50", figures["history_p50_ms_20_events"], "target 5 ms",
         history[20] / 5),
        ("history, 1000 events, ms p50", figures["history_p50_ms_1000_events"], "target 50 ms",
         history[1000] / 50),
        ("extract build, ms p50", figures["extract_build_ms_p50"], "target 50 ms",
         extracts["build_ms_p50"] / 50),
        ("extract verify, ms p50", figures["extract_verify_ms_p50"], "target 25 ms",
         extracts["verify_ms_p50"] / 25),
        ("", "", f"{extracts['signature_share']:.0%} of it in signature checks "
         f"({sum(extracts['events'].values())} events)", extracts["signature_share"]),
        ("web subject page, ms p50", figures["web_subject_p50_ms"],
         f"{CLIENTS_TEXT}; bare Flask p50 {figures['web_hello_p50_ms']} ms",
         web["web_subject_p50_ms"] / max(web["web_hello_p50_ms"], 0.01)),
        ("web subject page, ms p99", figures["web_subject_p99_ms"], "target 100 ms",
         web["web_subject_p99_ms"] / 100),
        ("web search, ms p99", figures["web_search_p99_ms"], "target 100 ms",
         web["web_search_p99_ms"] / 100),
        ("web as-of 1000 events, p50", figures["web_asof_p50_ms"], "one client; target 60 ms",
         web["web_asof_p50_ms"] / 60),
        ("web subject pages/s", figures["web_requests_per_s"],
         f"bare Flask route {figures['web_hello_requests_per_s']}/s, same gunicorn",
         web["web_requests_per_s"] / web["web_hello_requests_per_s"]),
        ("API batch 1000, events/s", figures["api_batch_events_per_s"],
         f"the importer in-process {figures['api_import_events_per_s']}/s (target >= 50 %)",
         web["api_batch_events_per_s"] / web["api_import_events_per_s"]),
        ("API submit, ms p99", figures["api_submit_p99_ms"],
         f"10 closed loops, {figures['api_submit_per_s']}/s; target 50 ms",
         web["api_submit_p99_ms"] / 50),
        ("  at 20 arrivals/s", figures["api_submit_paced_p99_ms"], "open loop; target 50 ms",
         web["api_submit_paced_p99_ms"] / 50),
        ("API credit check, ms p99", figures["api_check_p99_ms"],
         f"10 closed loops, {figures['api_check_per_s']}/s; target 30 ms",
         web["api_check_p99_ms"] / 30),
        ("  at 20 arrivals/s", figures["api_check_paced_p99_ms"], "open loop; target 30 ms",
         web["api_check_paced_p99_ms"] / 30),
        ("publish to 2 witnesses, p50", figures["publish_witnesses_p50_ms"],
         "ms, loopback, separate processes; target 20 ms", web["publish_witnesses_p50_ms"] / 20),
        ("  then to the monitor, p50", figures["publish_monitor_p50_ms"],
         "ms, its mirror verifying the checkpoint first", web["publish_monitor_p50_ms"] / 20),
        ("  to all three at once, p50", figures["publish_all_p50_ms"],
         "ms; target 20 ms", web["publish_all_p50_ms"] / 20),
        ("mirror catch-up, events/s", figures["mirror_events_per_s"],
         f"credit verify {figures['verify_events_per_s']}/s (target >= 50 %)",
         web["mirror_events_per_s"] / verified["events_per_s"]),
        ("extract size, bytes", figures["extract_bytes"],
         f"{extracts['events']['subject']} subject + {extracts['events']['registry']} key + "
         f"{extracts['events']['policies']} policy events", 1.0),
    ]
    print(f"{'figure':<26}{'value':>10}  {'limit measured in this run':<46}{'ratio':>7}")
    for name, value, limit, ratio in rows:
        print(f"{name:<26}{value!s:>10}  {limit:<46}{ratio:>7.2f}")
    for key, targets in TARGETS.items():
        target = targets[args.db]
        value = figures[key]
        lower = key.endswith(LOWER_IS_BETTER)
        met = value <= target if lower else value >= target
        print(f"target {key} {'<=' if lower else '>='} {target}: "
              f"{'met' if met else 'NOT met'} ({value})")
    save(figures)


if __name__ == "__main__":
    main()
