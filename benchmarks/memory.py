"""Peak resident memory of a probe process and of the worker processes it starts.

`getrusage(...).ru_maxrss` is the wrong figure here: Linux carries high-water marks across fork
and exec (and into RUSAGE_CHILDREN), so a probe that the bench starts while holding 500 MB after a
PostgreSQL read reported 500 MB whatever it used itself. `VmHWM` in /proc/<pid>/status belongs to
one address space, so the watcher reads it for this process and, every 20 ms, for each child.
"""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path
from types import TracebackType


def _hwm_mb(pid: int | str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _children() -> list[str]:
    found: list[str] = []
    try:
        for task in Path("/proc/self/task").iterdir():
            found += (task / "children").read_text().split()
    except OSError:
        pass
    return found


class PeakMemory:
    """`with PeakMemory() as peak: ...`, then `peak.own_mb`, `peak.workers_mb`, `peak.mb` (the
    largest single process: this one or a worker)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.workers_mb = 0.0
        self.own_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        own = _hwm_mb(os.getpid())
        self.own_mb = own if own is not None else (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _children():
                hwm = _hwm_mb(pid)
                if hwm is not None:
                    self.workers_mb = max(self.workers_mb, hwm)

    @property
    def mb(self) -> float:
        return max(self.own_mb, self.workers_mb)
