"""Rebuild the subjects read model of one store; print its rate and peak RSS as JSON."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from ledger.application import CreditLedger
from ledger.settings import Settings
from projections.runner import ProjectionRunner


def main() -> None:
    ledger = CreditLedger(Settings(database_url=sys.argv[1], keys_dir=Path(sys.argv[2])))
    try:
        events = ledger.event_count()
        started = time.perf_counter()
        ProjectionRunner(ledger).rebuild("subjects")
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"events": events, "seconds": elapsed, "events_per_s": events / elapsed,
                      "peak_rss_mb": max(own, workers) / 1024}))


if __name__ == "__main__":
    main()
