"""A child process that ends with its parent, instead of living on under PID 1.

`claire`'s children (the services of a supervised run, the report worker) are
useless without the process that started them, and some hold ports and
connections. A supervisor starts its services with `parent_death_preexec`, so that
the kernel ends a service whose supervisor died while it was still starting. Each
child calls `end_with_parent` first: on Linux the kernel sends it
`signum` when its parent dies (PR_SET_PDEATHSIG); everywhere, a thread checks the
parent every half second, sends `signum` when it is gone, and exits the process
HARD_EXIT_S later if the signal did not end it. A parent already gone before the
child got there ends it at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Final

PR_SET_PDEATHSIG: Final = 1
POLL_S: Final = 0.5
HARD_EXIT_S: Final = 2.0  # what a stop had not committed is done again by the next start


def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def set_parent_death_signal(signum: int) -> bool:
    """Linux: the kernel sends `signum` to this process when its parent thread ends."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def parent_death_preexec(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that asks the kernel to send the child
    `signum` when its parent's thread that starts it ends: it holds from the fork on,
    while the child still imports, before it can call `end_with_parent`. Linux only
    (None elsewhere). libc is looked up here, in the parent, so that the child between
    fork and exec makes only the one call."""
    prctl = _prctl()
    if prctl is None:
        return None

    def set_in_child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)

    return set_in_child


def end_with_parent(
    parent: int, signum: int = signal.SIGTERM, *, kernel: bool = True, poll_s: float = POLL_S
) -> None:
    """End this process (with `signum`, then hard) when `parent` is no longer its parent.

    `kernel=False` leaves PR_SET_PDEATHSIG out: the kernel sends it when the parent's
    *thread* that started the child ends, which is wrong for a child started from a
    short-lived thread.
    """
    if kernel:
        set_parent_death_signal(signum)
    if os.getppid() != parent:
        _end(signum)
    threading.Thread(target=_watch, args=(parent, signum, poll_s), daemon=True).start()


def _watch(parent: int, signum: int, poll_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    _end(signum)


def _end(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(HARD_EXIT_S)
    os._exit(128 + signum)


__all__ = ["end_with_parent", "parent_death_preexec", "set_parent_death_signal"]
