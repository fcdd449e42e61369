"""Time issuing and verifying the extract of the bench's 50-event subject; print JSON.

Issuing includes the fresh checkpoint an extract as of now rests on (a signed write); verifying
includes parsing the file, as `python -m proofs.verify_extract` does.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.bench import EXTRACT_SUBJECT
from domain import clock
from ledger.application import CreditLedger
from ledger.settings import Settings
from proofs.verify_extract import verify_extract
from workflows.extracts import ExtractIssuer


def main(runs: int = 101) -> None:
    gc.freeze()
    app = CreditLedger(Settings(database_url=sys.argv[1], keys_dir=Path(sys.argv[2]),
                                passphrase=sys.argv[3]))
    try:
        issuer = ExtractIssuer(app)
        builds, texts = [], []
        for _ in range(runs):
            started = time.perf_counter()
            issued = issuer.issue(EXTRACT_SUBJECT.key)
            text = issued.to_json()
            builds.append((time.perf_counter() - started) * 1000)
            texts.append(text)
        trusted = app.registry.key_for_signing("platform", clock.now()).public_key
    finally:
        app.close()
    verifies, shares = [], []
    signature_checks = ("signature", "registry", "checkpoint", "events")
    for text in texts:
        started = time.perf_counter()
        result = verify_extract(json.loads(text), trusted)
        elapsed = time.perf_counter() - started
        verifies.append(elapsed * 1000)
        shares.append(sum(result.timings.get(k, 0.0) for k in signature_checks) / elapsed)
    print(json.dumps({
        "build_ms_p50": statistics.median(builds),
        "verify_ms_p50": statistics.median(verifies),
        "bytes": len(texts[-1].encode()),
        "signature_share": statistics.median(shares),
        "events": result.counts,
    }))


if __name__ == "__main__":
    main()
