"""Run `verify` on one store and print its rate and its peak RSS (its own or a worker's) as JSON."""

from __future__ import annotations

import json
import sys
import time

from sqlalchemy import create_engine

from benchmarks.memory import PeakMemory
from ledger import tables
from ledger.application import EVENTS_TABLE
from ledger.verify import LedgerVerifier


def main() -> None:
    engine = create_engine(sys.argv[1])
    with PeakMemory() as peak:
        started = time.perf_counter()
        report = LedgerVerifier(engine, tables.events_table(EVENTS_TABLE)).run()
        elapsed = time.perf_counter() - started
    engine.dispose()
    print(json.dumps({
        "ok": report.ok,
        "first": str(report.first_failure) if report.first_failure else None,
        "events": report.events,
        "seconds": elapsed,
        "events_per_s": report.events / elapsed if elapsed else 0.0,
        "peak_rss_mb": peak.mb,
        "checkers": report.checkers,
        "checkers_busy_share": report.checkers_busy_share,
    }))


if __name__ == "__main__":
    main()
