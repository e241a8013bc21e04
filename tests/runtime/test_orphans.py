"""A child started with `parent_death_preexec` ends with its parent, even one that
never runs our code (here `sleep`), so a service still importing when its supervisor
is killed with SIGKILL does not live on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from engine.runtime.orphans import parent_death_preexec

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the parent-death signal (PR_SET_PDEATHSIG) is Linux only",
)

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from engine.runtime.orphans import parent_death_preexec
    guard = parent_death_preexec() if sys.argv[1] == "guarded" else None
    child = subprocess.Popen(["sleep", "60"], preexec_fn=guard, start_new_session=True)
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def _orphan_after_parent_killed(mode: str) -> tuple[int, bool]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    alive = True
    while alive and time.monotonic() < deadline:
        try:
            alive = psutil.Process(child).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        time.sleep(0.05)
    if alive:
        os.kill(child, signal.SIGKILL)
    return child, alive


def test_a_guarded_child_ends_when_its_parent_is_killed() -> None:
    _, alive = _orphan_after_parent_killed("guarded")
    assert not alive, "the child outlived its parent"


def test_an_unguarded_child_outlives_its_parent() -> None:
    # The other side of the same coin: without the guard the kernel keeps it running.
    _, alive = _orphan_after_parent_killed("unguarded")
    assert alive


def test_the_guard_is_a_callable_on_linux() -> None:
    assert callable(parent_death_preexec(signal.SIGTERM))
