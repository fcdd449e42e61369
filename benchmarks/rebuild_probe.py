"""Rebuild the subjects read model of one store; print its rate and peak RSS as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.memory import PeakMemory
from ledger.application import CreditLedger
from ledger.settings import Settings
from projections.runner import ProjectionRunner


def main() -> None:
    ledger = CreditLedger(Settings(database_url=sys.argv[1], keys_dir=Path(sys.argv[2])))
    try:
        events = ledger.event_count()
        with PeakMemory() as peak:
            started = time.perf_counter()
            ProjectionRunner(ledger).rebuild("subjects")
            elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    print(json.dumps({"events": events, "seconds": elapsed, "events_per_s": events / elapsed,
                      "peak_rss_mb": peak.mb}))


if __name__ == "__main__":
    main()
