"""Aggregates the ledger knows to have events, remembered by the writer's process.

An import asks, for every batch, which of its subjects the ledger already holds
(``CreditLedger.existing``): about a thousand look-ups of the events' id index, whose pages
outgrow the database's cache as the ledger grows (on a 1,300,000-event SQLite store, 46 us a
record from a cold cache, against 4 from a warm one). Events are never deleted, so an aggregate
once seen with a committed event has events for ever: such a fact can be remembered without ever
going stale. What is seen inside a write that has not committed (a bulk import's own rows) is
held apart until that write commits, and dropped if it does not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from itertools import islice
from uuid import UUID

KNOWN_AGGREGATES = 262_144  # ids remembered at most (about 20 MB); past it, the older half goes


class KnownAggregates:
    """Ids of aggregates seen with committed events (as ``UUID.int``: a 128-bit int, not the
    UUID object around it), oldest first."""

    def __init__(self, limit: int = KNOWN_AGGREGATES) -> None:
        self.limit = limit
        self._known: dict[int, None] = {}
        self._staged: list[int] = []  # seen inside a write that has not committed yet
        self._lock = threading.Lock()  # the web server's threads share one ledger

    def __len__(self) -> int:
        return len(self._known)

    def among(self, ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``ids`` known to have events."""
        known = self._known
        return {i for i in ids if i.int in known}

    def committed(self, ids: Iterable[UUID]) -> None:
        """These have committed events: remember them."""
        self._remember([i.int for i in ids])

    def staged(self, ids: Iterable[UUID]) -> None:
        """These were seen inside a write not yet committed: remembered if it commits."""
        self._staged.extend(i.int for i in ids)

    def write_committed(self) -> None:
        staged, self._staged = self._staged, []
        self._remember(staged)

    def write_rolled_back(self) -> None:
        self._staged = []

    def _remember(self, keys: list[int]) -> None:
        if not keys:
            return
        with self._lock:
            known = self._known
            known.update(dict.fromkeys(keys))
            if len(known) > self.limit:
                for key in list(islice(known, len(known) - self.limit // 2)):
                    del known[key]
