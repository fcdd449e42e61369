"""Worker processes that do not outlive the process that started them.

A worker of a ``ProcessPoolExecutor`` whose parent is killed (SIGKILL, the OOM killer) waits for
work for ever: it holds both ends of its own call queue, so it never sees the parent go. A rebuild
worker would go on writing into a half-built generation; the signing process of an import would
keep authorities' private keys open in memory. Each such worker calls ``die_with_parent`` first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """A worker's first act: die when the process that started it dies. On Linux the kernel
    sends the SIGKILL; elsewhere a thread watches for the parent to go."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        armed = False
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
