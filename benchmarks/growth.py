"""`make bench BENCH_ARGS=--growth`: what one event costs as the ledger grows, in one run.

    python -m benchmarks.bench --growth [--db sqlite|postgresql] [--sizes 100000,300000,1000000]

One store grows through the sizes, in batches written in turn as an import writes them
(``CreditServices.submit_record_batches``: each batch signed while the one before is written),
each batch committed on its own as API batches are (an import commits its whole file at once); at
each size (on PostgreSQL once vacuumed and analysed, as autovacuum would leave the tables), the
bench takes: the cost of writing an event at that size (the last WINDOW events
before it; on SQLite also the bytes handed to ``write()`` per event meanwhile), a whole-store
`verify` (and how busy its signature checkers were), a rebuild of the subjects read model with 1
and with 2 worker processes, and the history of the 20- and 1,000-record subjects. It prints
the cost per event at each size and the ratio last ÷ first (1.00: flat), and merges the figures
into benchmarks/results/latest.json. The shares of raw signing and verifying are of raw figures
taken beside the last size (signing right after its ingest window, verifying before and after
its verify): on a shared host the machine's speed moves within a run, and the figures of its
start no longer describe the machine an hour later.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks.city import as_autovacuum_leaves_it, start_city
from workflows.services import RecordSubmission

WINDOW = 20_000  # events timed before each size: the cost of writing at that size
SIZES = (100_000, 300_000, 1_000_000)


def grow(url: str, keys_dir: Path, sizes: Sequence[int], batch: int,
         submissions: Callable[[int], Any], passphrase: str,
         measure: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    """Ingest into one store up to each size in turn; at each, time the last WINDOW events and
    call ``measure`` (which runs the other probes in their own processes)."""
    app, services = start_city(url, keys_dir, passphrase)
    points: list[dict[str, Any]] = []
    try:
        # one city throughout (its subjects drawn for the largest size), so the sizes differ
        # only in how much the ledger already holds
        source = iter(submissions(max(sizes)))

        def batches() -> Iterator[list[RecordSubmission]]:
            while pending := list(islice(source, batch)):
                yield pending

        stored = app.event_count()
        targets = iter(sizes)
        size: int | None = next(targets)
        window_start: tuple[int, float, int | None] | None = None
        # as an import writes: each batch signed while the one before is written
        for _ in services.submit_record_batches(batches()):
            assert size is not None
            stored = app.event_count()
            if sys.stderr.isatty():
                print(f"\r  ingest {stored}/{size}", end="", file=sys.stderr)
            if window_start is None and stored >= size - WINDOW:
                window_start = (stored, time.perf_counter(), _bytes_written())
            elif window_start is not None and stored >= size:
                points.append(_point(app, stored, window_start, measure))
                size, window_start = next(targets, None), None
                if size is None:
                    break
                if stored >= size - WINDOW:
                    window_start = (stored, time.perf_counter(), _bytes_written())
        if size is not None:
            raise SystemExit(f"the synthetic city ran out of records at {stored} events")
    finally:
        app.close()
    return points


def _bytes_written() -> int | None:
    """What this process has handed to write() so far (Linux's ``wchar``), or None. With SQLite
    the ledger's writes are this process's own: the WAL's pages at each commit, and the
    checkpointer thread's copies of them into the database. Unlike time, it does not move with
    the host's speed."""
    try:
        with open("/proc/self/io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))
    except (OSError, StopIteration, ValueError):
        return None


def _point(app: Any, stored: int, window_start: tuple[int, float, int | None],
           measure: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """The cost of writing at this size (the window's events), and ``measure``'s figures."""
    if sys.stderr.isatty():
        print(file=sys.stderr)
    written = stored - window_start[0]
    seconds = time.perf_counter() - window_start[1]
    now_written = _bytes_written()
    as_autovacuum_leaves_it(app.engine)
    point = {"size": stored, "ingest_us_per_event": seconds / written * 1e6,
             "ingest_events_per_s": written / seconds}
    if (app.engine.dialect.name == "sqlite" and now_written is not None
            and window_start[2] is not None):  # PostgreSQL's writes are the server's
        point["ingest_kb_written_per_event"] = (now_written - window_start[2]) / written / 1024
    point.update(measure(stored))
    print(_row(point), flush=True)
    return point


HEADER = (f"{'events':>9}  {'ingest us/ev':>12}  {'kB/ev':>5}  {'verify us/ev':>12}  {'busy':>5}  "
          f"{'rebuild 1w':>10}  {'rebuild 2w':>10}  {'RSS MB':>6}  {'hist 20':>7}  {'hist 1000':>9}")


def _row(p: dict[str, Any]) -> str:
    kb = p.get("ingest_kb_written_per_event")
    return (f"{p['size']:>9}  {p['ingest_us_per_event']:>12.1f}  "
            f"{'-' if kb is None else f'{kb:.1f}':>5}  {p['verify_us_per_event']:>12.1f}"
            f"  {p['verify_busy_share']:>5.2f}  {p['rebuild_1_events_per_s']:>10.0f}  "
            f"{p['rebuild_2_events_per_s']:>10.0f}  {p['rebuild_peak_rss_mb']:>6.0f}  "
            f"{p['history_ms_20']:>7.2f}  {p['history_ms_1000']:>9.2f}")


def report(points: list[dict[str, Any]], sign_per_s: float, verify_per_s: float,
           verify_all_cores_per_s: float, cores: int, db: str) -> dict[str, Any]:
    """Print the curve's summary (ratios last ÷ first, each so that 1.00 is flat and below 1 is
    worse) and return the flat figures for latest.json (``growth_<db>_…``)."""
    first, last = points[0], points[-1]
    print(f"  (ingest us/ev: Python and the database per stored event over the {WINDOW} events "
          "before the size, batches in turn, a commit each; kB/ev: what the writer "
          "handed to write() per event meanwhile, SQLite only (its WAL and checkpoints: it does "
          "not move with the host's speed); verify: whole store; rebuild: events/s; history: "
          "ms p50)")
    ratios = {
        "ingest": first["ingest_us_per_event"] / last["ingest_us_per_event"],
        "verify": first["verify_us_per_event"] / last["verify_us_per_event"],
        "rebuild (2 workers)": last["rebuild_2_events_per_s"] / first["rebuild_2_events_per_s"],
        "history (1000)": first["history_ms_1000"] / last["history_ms_1000"],
    }
    if "ingest_kb_written_per_event" in first and "ingest_kb_written_per_event" in last:
        ratios["bytes written (ingest)"] = (first["ingest_kb_written_per_event"]
                                            / last["ingest_kb_written_per_event"])
    print(f"rate at {last['size']} ÷ rate at {first['size']} (1.00 is flat; target ingest >= 0.85):")
    for name, ratio in ratios.items():
        print(f"  {name:<22}{ratio:>6.2f}")
    # the shares are of the raw figures taken beside the last size (the machine's speed moves
    # within a run); those of the run's start are printed too
    sign_here = last.get("raw_sign_per_s", sign_per_s)
    verify_here = last.get("raw_verify_per_s", verify_per_s)
    ingest_share = last["ingest_events_per_s"] / sign_here
    verify_share = 1e6 / last["verify_us_per_event"] / (verify_here * cores)
    verify_ceiling = 1e6 / last["verify_us_per_event"] / verify_all_cores_per_s
    print(f"signed ingest at {last['size']}: {last['ingest_events_per_s']:.0f}/s = "
          f"{ingest_share:.2f} of one core's raw signing beside it ({sign_here:.0f}/s; "
          f"{sign_per_s:.0f}/s at the start: {last['ingest_events_per_s'] / sign_per_s:.2f})")
    print(f"verify at {last['size']}: {1e6 / last['verify_us_per_event']:.0f}/s = "
          f"{verify_share:.2f} of {cores} x raw verify beside it ({verify_here:.0f}/s; "
          f"{verify_per_s:.0f}/s at the start: "
          f"{1e6 / last['verify_us_per_event'] / (verify_per_s * cores):.2f}), "
          f"{verify_ceiling:.2f} of raw verify on {cores} cores at once at the start "
          f"({verify_all_cores_per_s:.0f}/s); its signature checkers busy "
          f"{last['verify_busy_share']:.0%} of the pass")
    figures: dict[str, Any] = {
        "ingest_ratio": round(ratios["ingest"], 3),
        "verify_ratio": round(ratios["verify"], 3),
        "rebuild_ratio": round(ratios["rebuild (2 workers)"], 3),
        "history_ratio": round(ratios["history (1000)"], 3),
        **({"written_ratio": round(ratios["bytes written (ingest)"], 3)}
           if "bytes written (ingest)" in ratios else {}),
        "ingest_share_of_sign": round(ingest_share, 3),
        "verify_share_of_verify": round(verify_share, 3),
        "verify_share_of_all_cores": round(verify_ceiling, 3),
        "raw_sign_per_s": round(sign_per_s),
        "raw_verify_per_s": round(verify_per_s),
        "raw_verify_all_cores_per_s": round(verify_all_cores_per_s),
    }
    for p in points:
        for key, value in p.items():
            if key != "size":
                figures[f"{p['size']}_{key}"] = round(value, 3)
    return {f"growth_{db}_{key}": value for key, value in figures.items()}
