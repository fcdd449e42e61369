"""Rebuild the subjects read model of one store; print its rate and peak RSS as JSON.

    python -m benchmarks.rebuild_probe URL KEYS_DIR [WORKERS]   (default: as `credit rebuild`)
"""

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
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else None
    ledger = CreditLedger(Settings(database_url=sys.argv[1], keys_dir=Path(sys.argv[2])))
    try:
        events = ledger.event_count()
        with PeakMemory() as peak:
            started = time.perf_counter()
            ProjectionRunner(ledger).rebuild("subjects", workers=workers)
            elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    print(json.dumps({"events": events, "seconds": elapsed, "events_per_s": events / elapsed,
                      "peak_rss_mb": peak.mb, "workers": workers}))


if __name__ == "__main__":
    main()
