"""The bench's ledger before its first record: the platform, every Lin'an authority and the
bundled policies, dated 2026-11-01, as `credit demo` starts a city."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

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


def as_autovacuum_leaves_it(engine: Engine) -> None:
    """On PostgreSQL, what autovacuum does after a bulk load: fresh statistics, and the
    visibility map that lets an index-only scan skip the table. This machine's server runs
    without autovacuum (its CI settings, for tests that repeat), where a production server
    vacuums a table after inserts of a fifth of it; unvacuumed, a rebuild's read of the subject
    index fetched every event's log row from the table (300,000 events: the server's time 14
    us an event, 11.7 once vacuumed)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")
