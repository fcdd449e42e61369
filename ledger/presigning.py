"""Building and signing batches of events ahead of their save (an import): on a thread, or in a
process of its own once it has started.

A batch is written while the next one is built and signed. On a thread of the writer's
process, that work takes turns with the writer for Python's lock: the writer stops at each of
its database calls and waits to go on, and each signature hands the lock over twice. Measured on
a 360,000-event SQLite store, the writer's time an event went from 104 µs alone to 124 µs beside
two signing threads, and to 128 µs beside a thread building events without pause. A process of
its own builds and signs on the other core; the writer pickles the submissions and unpickles the
signed events (about 4 µs an event each).

The process opens the keys itself, from the ledger's settings (each authority's key with its own
secret, as the writer does): no private key crosses between the processes; the settings, with
the secrets they hold, are handed to it once, at its start, as a spawned process's arguments
are (a pipe between the two). It starts in the
background (about half a second); until it has, batches are signed on the thread. Whatever the
process cannot do (a refused record, a key it cannot open, the process gone) is done again on
the thread, which raises what it raises: the process changes where the work runs, never what is
written (tests/integration/test_record_batches.py). A failure the thread does not share (the
process gone, a key it cannot open) is logged once, and the rest of the run signs on the thread.
"""

from __future__ import annotations

import contextvars
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

from domain import clock
from domain.base import LedgerAggregate
from keys.registry import KeyRegistry
from keys.store import KeyStore, KeyStoreError
from ledger.mapper import SigningMapper, payload_transcoder
from ledger.processes import die_with_parent
from ledger.settings import Settings
from ledger.signing import Presigned, SigningSession

# Builds a batch's events from the arguments given; a function of a module (the process
# imports it by name), reading nothing of the ledger.
Build = Callable[..., Sequence[LedgerAggregate.Event]]
Snapshot = tuple[SigningSession, int]
StartPresigning = Callable[[Sequence[LedgerAggregate.Event], Snapshot], Callable[[], Presigned]]

log = logging.getLogger(__name__)


class SigningInProcessFailed(Exception):
    """What the signing process could not do, as one sentence for the writer's log.

    Raised in place of the process's own error, which need not survive pickling: one whose
    constructor takes other arguments than its message (``LooseKeyPermissions``) could not be
    rebuilt in the writer, and that broke the pool."""


class Presigner:
    """Hands each batch to the signing process when it is ready, else to a thread.

    ``processes``: None, the process once it has started (an import); True, every batch to the
    process (tests); False, a thread only."""

    def __init__(self, start_presigning: StartPresigning, settings: Settings | None,
                 processes: bool | None = None) -> None:
        self._start_presigning = start_presigning
        self._settings = settings
        self._processes = processes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="credit-prepare")
        self._process: ProcessPoolExecutor | None = None
        self._started: Future[None] | None = None
        self._given_up = False  # the process died or could not start: not started again
        self.batches_in_process = 0

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)
        if self._process is not None:
            # One that signed nothing (an import of a few batches, an API request of a few
            # thousand rows) is not waited for: it may still be starting, half a second the
            # caller would wait for nothing. It ends on its own once started.
            self._process.shutdown(wait=self.batches_in_process > 0, cancel_futures=True)

    def start_process(self) -> None:
        """Start the signing process in the background (an import with more than one batch)."""
        if (self._process is not None or self._given_up or self._settings is None
                or self._processes is False
                or ((os.cpu_count() or 1) < 2 and not self._processes)):
            return
        self._process = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_open_signing, initargs=(self._settings, os.getpid()))
        self._started = self._process.submit(_started)

    def presign(self, build: Build, args: tuple[Any, ...], snapshot: Snapshot
                ) -> Callable[[], Presigned]:
        """Build ``build(*args)`` and sign it with the snapshot's keys; the call returned waits
        for the result."""
        if self._process is not None and self._started is not None and (
                self._processes or self._started.done()):
            session, seen = snapshot
            try:
                job = self._process.submit(_build_and_sign, build, args, session.registry,
                                           session.codes, seen, clock.frozen_instant())
            except BrokenProcessPool:  # it died, or never started: the thread from now on
                self._drop_process()
            else:
                self.batches_in_process += 1
                return lambda: self._from_process(job, build, args, snapshot)
        context = contextvars.copy_context()  # the caller's clock (a demo city's is set)
        signing = self._thread.submit(context.run, self._on_thread, build, args, snapshot)
        return lambda: signing.result()()

    def _on_thread(self, build: Build, args: tuple[Any, ...], snapshot: Snapshot
                   ) -> Callable[[], Presigned]:
        return self._start_presigning(build(*args), snapshot)

    def _from_process(self, job: Future[Presigned], build: Build, args: tuple[Any, ...],
                      snapshot: Snapshot) -> Presigned:
        try:
            return job.result()
        except Exception as exc:
            # Done again here: a refusal is raised as this thread raises it. A failure this
            # thread does not share (the process died, or cannot open a key the writer holds)
            # costs only speed, and is said once: the rest of the run is signed here.
            self._drop_process()
            presigned = self._on_thread(build, args, snapshot)()
            reason = (str(exc) if isinstance(exc, SigningInProcessFailed)
                      else "it stopped" if isinstance(exc, BrokenProcessPool)
                      else type(exc).__name__)
            log.warning("the signing process could not sign a batch (%s); the rest of this "
                        "run is signed on the writer's thread, more slowly", reason)
            return presigned

    def _drop_process(self) -> None:
        if self._process is not None:
            self._process.shutdown(wait=False, cancel_futures=True)
        self._process = self._started = None
        self._given_up = True


@contextmanager
def presigning(start_presigning: StartPresigning, settings: Settings | None,
               processes: bool | None = None) -> Iterator[Presigner]:
    presigner = Presigner(start_presigning, settings, processes)
    try:
        yield presigner
    finally:  # a refusal, or the caller stopped: the batches being signed are dropped
        presigner.close()


# -- in the signing process -------------------------------------------------------------------

_opened: tuple[SigningMapper, KeyStore] | None = None


def _open_signing(settings: Settings, parent: int) -> None:
    global _opened
    die_with_parent(parent)  # a killed import leaves no process holding its keys open
    _opened = (SigningMapper(payload_transcoder()),
               KeyStore(settings.keys_dir, settings.secret_for, settings.kdf_iterations))


def _started() -> None:
    """Returns once the process has started and imported what it needs."""


def _build_and_sign(build: Build, args: tuple[Any, ...], registry: KeyRegistry,
                    codes: dict[str, str], seen: int, frozen: datetime | None) -> Presigned:
    if _opened is None:
        raise RuntimeError("the signing process was not opened")
    mapper, keystore = _opened
    try:
        with clock.frozen_at(frozen) if frozen is not None else nullcontext():
            events = build(*args)
        stored = mapper.start_signing(events, SigningSession(registry, codes, keystore))()
    except Exception as exc:
        raise SigningInProcessFailed(_described(exc)) from None
    return Presigned(events, stored, seen)


def _described(exc: Exception) -> str:
    """The error's name, and its message where it names files and keys only: a refusal's may
    name a subject, and personal data stays out of logs."""
    if isinstance(exc, (KeyStoreError, OSError)):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__
