"""The bench's ledger before its first record: the platform, every Lin'an authority and the
bundled policies, dated 2026-11-01, as `credit demo` starts a city."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

from domain import clock
from domain.authorities import LINAN_AUTHORITIES
from ledger.application import CreditLedger
from ledger.settings import Settings
from workflows.services import CreditServices


def start_city(url: str, keys_dir: Path, passphrase: str) -> tuple[CreditLedger, CreditServices]:
    """A new ledger at ``url`` with its authorities and policies (the caller closes it)."""
    app = CreditLedger(Settings(database_url=url, keys_dir=keys_dir, passphrase=passphrase))
    try:
        services = CreditServices(app)
        with clock.frozen_at(datetime(2026, 11, 1, tzinfo=UTC)):
            app.initialise(LINAN_AUTHORITIES[0])
            for profile in LINAN_AUTHORITIES[1:]:
                app.register_authority(profile)
            services.publish_bundled()
    except BaseException:
        app.close()
        raise
    gc.freeze()  # as `credit` does after start-up (cli/main.py)
    return app, services
