"""Time `history` (a subject's state today, from its signed events) for the bench's 20- and
1,000-record subjects, in a process set up as the `credit` command sets itself up."""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.bench import HISTORY_SUBJECTS
from ledger.application import CreditLedger
from ledger.settings import Settings
from workflows.services import CreditServices


def main(runs: int = 21) -> None:
    gc.freeze()  # as cli.main does after start-up
    app = CreditLedger(Settings(database_url=sys.argv[1], keys_dir=Path(sys.argv[2])))
    try:
        services = CreditServices(app)
        result = {}
        for size, subject in HISTORY_SUBJECTS.items():
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                state = services.state(subject.key)
                times.append((time.perf_counter() - started) * 1000)
            if len(state["records"]) != size:
                raise SystemExit(f"the {size}-record subject has {len(state['records'])}")
            result[size] = statistics.median(times)
    finally:
        app.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
