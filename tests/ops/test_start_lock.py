"""Two starts in one data folder at once: exactly one runs, the other is refused with the
first run's id, every time."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ClaireError
from engine.home.lock import RunLock, StartLock, run_is_alive, run_started
from engine.ops.preflight import PreflightContext, check_active_runs
from engine.run import lifecycle
from engine.run.request import PreparedRun, RunRequest
from engine.run.runtimes import ProcessRuntime
from tests.cli.support import ETH

TRIALS = 50
_ids = itertools.count()


class HeldRun:
    """A run as the process runtime holds one: recorded first (a moment), then locked."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.release = threading.Event()

    def run(self, prepared: PreparedRun, *args: Any) -> str:
        run_id = f"run-{next(_ids)}"
        assert prepared.folder is not None
        time.sleep(0.02)  # the run is created in the database before its lock is taken
        lock = RunLock(prepared.folder, run_id)
        assert lock.acquire()
        run_started()  # as engine.run.session.held_run does
        self.running.append(run_id)
        self.release.wait(10)
        lock.release()
        return run_id


def only_the_active_runs_check(prepared: PreparedRun, hold: Any, on_warning: Any) -> dict:
    assert prepared.folder is not None
    result = check_active_runs(PreflightContext(None, prepared.folder))
    if result.status.value == "fail":
        raise ClaireError(f"no-go: {result.value}")
    return {}


def test_of_two_starts_at_once_exactly_one_runs_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "_preflight", only_the_active_runs_check)
    held = HeldRun()
    monkeypatch.setattr(ProcessRuntime, "run", lambda self, *a: held.run(*a))
    for trial in range(TRIALS):
        folder = tmp_path / f"trial-{trial}"
        stale = RunLock(folder, "run-of-yesterday")  # a lock no process holds: checked, free
        assert stale.acquire()
        stale.release()
        held.running.clear()
        held.release.clear()
        refusals: list[str] = []
        go = threading.Barrier(2)

        def start(folder: Path = folder, refusals: list[str] = refusals, go: Any = go) -> None:
            request = RunRequest(replay=(ETH,), days=1, speed="max", data_dir=folder)
            go.wait()
            try:
                lifecycle.start(request)
            except ClaireError as exc:
                refusals.append(str(exc))
                held.release.set()

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert len(held.running) == 1, f"trial {trial}: {held.running} ran"
        [refusal] = refusals
        assert held.running[0] in refusal, refusal


def test_a_start_waits_for_another_start_in_the_folder_then_gives_up(tmp_path: Path) -> None:
    first = StartLock(tmp_path)
    first.acquire()
    with pytest.raises(ClaireError, match="another run is starting in"):
        StartLock(tmp_path).acquire(wait_s=0.2)
    assert not run_is_alive(tmp_path, "run-of-yesterday")  # a check does not release it
    with pytest.raises(ClaireError, match="another run is starting in"):
        StartLock(tmp_path).acquire(wait_s=0.2)
    assert RunLock(tmp_path, "run-a").acquire()  # the first start's run holds its lock now
    run_started()
    StartLock(tmp_path).acquire(wait_s=0.2)


def _start_process(folder: Path, run_id: str, go: Any, release: Any, answers: Any) -> None:
    """One start in a process of its own (forked: the engine is imported already), with
    the preflight reduced to its check for active runs and the run to taking its lock."""

    def run(self: Any, prepared: PreparedRun, *args: Any) -> str:
        assert prepared.folder is not None
        time.sleep(0.02)  # the run is created in the database before its lock is taken
        lock = RunLock(prepared.folder, run_id)
        assert lock.acquire()
        run_started()
        answers.put(("ran", run_id, os.getpid()))
        release.wait(30)
        lock.release()
        return run_id

    lifecycle._preflight = only_the_active_runs_check  # type: ignore[assignment]
    ProcessRuntime.run = run  # type: ignore[method-assign]
    go.wait(30)
    try:
        lifecycle.start(RunRequest(replay=(ETH,), days=1, speed="max", data_dir=folder))
    except ClaireError as exc:
        answers.put(("refused", str(exc), os.getpid()))


@pytest.mark.slow
def test_of_two_start_processes_at_once_exactly_one_runs_every_time(tmp_path: Path) -> None:
    forked = multiprocessing.get_context("fork")
    for trial in range(TRIALS):
        folder = tmp_path / f"trial-{trial}"
        stale = RunLock(folder, "run-of-yesterday")  # a lock no process holds: checked, free
        assert stale.acquire()
        stale.release()
        go, release, answers = forked.Event(), forked.Event(), forked.Queue()
        ids = (f"run-{trial}-a", f"run-{trial}-b")
        starts = [
            forked.Process(target=_start_process, args=(folder, i, go, release, answers))
            for i in ids
        ]
        try:
            for start in starts:
                start.start()
            go.set()  # both at once
            said = [answers.get(timeout=30) for _ in starts]
            assert {pid for *_, pid in said} == {s.pid for s in starts}  # two processes
            ran = [what for kind, what, _ in said if kind == "ran"]
            refused = [what for kind, what, _ in said if kind == "refused"]
            assert len(ran) == 1 and len(refused) == 1, f"trial {trial}: {said}"
            assert ran[0] in refused[0], refused[0]
            release.set()
            for start in starts:
                start.join(timeout=30)
                assert start.exitcode == 0
        finally:
            release.set()
            for start in starts:
                if start.is_alive():
                    start.kill()
                    start.join()
