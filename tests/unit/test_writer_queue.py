"""Writers of one SQLite file take turns on an flock beside it (ledger.storage.WriterQueue):
a second process waits until the first lets go, and wakes when it does."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from ledger.storage import WriterQueue


def _hold(url: str, seconds: float, ready: object) -> None:
    queue = WriterQueue(url)
    with queue.turn():
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)
    queue.close()


def test_a_second_writer_waits_for_the_first_and_wakes_when_it_is_done(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'credit.db'}"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(url, 0.6, ready))
    holder.start()
    assert ready.wait(10)
    queue = WriterQueue(url)
    started = time.monotonic()
    with queue.turn():
        waited = time.monotonic() - started
    queue.close()
    holder.join(10)
    assert 0.3 < waited < 3.0, waited  # it waited for the holder, and not a poll's nap more
    assert (tmp_path / "credit.db.writers").exists()


def test_postgresql_and_memory_databases_need_no_queue() -> None:
    for url in ("postgresql+psycopg2://127.0.0.1/test", "sqlite:///:memory:"):
        queue = WriterQueue(url)
        assert queue.path is None
        with queue.turn():
            pass
