"""Detached runs: `claire papertest start ... --detach`.

The run goes to a daemon process: its own session (no terminal, so a closed
terminal or a Ctrl-C there does not reach it), stdin closed, stdout and stderr
appended to `runs/<run_id>.log` in the data folder, its pid recorded beside it
(`runs/<run_id>.process.json`). The command that started it waits until the run
has processed its first market event (its first checkpoint is stored), or has
ended (then with the reason), and returns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from engine.errors import ClaireError
from engine.home.processes import log_path, runs_folder
from engine.store import RunStatus, Store

FIRST_EVENT_TIMEOUT_S: Final = 120.0
POLL_S: Final = 0.1


class DetachedRunFailed(ClaireError):
    pass


@dataclass(frozen=True, slots=True)
class DetachedRun:
    run_id: str
    pid: int
    log: Path
    status: str  # running, or how it already ended (completed, stopped)
    market_events: int
    waited_s: float
    first_event: bool  # False: the wait ran out before the first event

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "log": str(self.log),
            "status": self.status,
            "market_events": self.market_events,
            "first_event": self.first_event,
        }


def preflight_path(data_dir: Path, run_id: str) -> Path:
    return runs_folder(data_dir) / f"{run_id}.preflight.json"


def save_preflight(data_dir: Path, run_id: str, result: dict[str, Any]) -> Path:
    path = preflight_path(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return path


def load_preflight(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClaireError(f"cannot read the preflight result {path}: {exc}.") from None
    if not isinstance(body, dict):
        raise ClaireError(f"the preflight result {path} is not a JSON object.")
    return body


def spawn(
    args: Sequence[str], data_dir: Path, run_id: str, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """`claire ARGS` as a daemon; its output goes to the run's log file."""
    log = log_path(data_dir, run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - this interpreter running claire itself
            [sys.executable, "-m", "claire_cli.main", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no controlling terminal: a closed terminal does not reach it
            close_fds=True,
            cwd=cwd,
        )


def last_error(log: Path) -> str:
    """The last line the run wrote, which names why it ended."""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return "no log"
    for line in reversed(lines):
        if line.strip():
            return line.strip().removeprefix("error: ")
    return "it wrote nothing"


def _written(store: Store, run_id: str, after: datetime | None = None) -> int:
    """A run without checkpoints (one process per service): 1 once its first market
    event (after `after`, a resumed run's last before) is written."""
    record = store.get_run(run_id)
    last = record.last_event_ts if record is not None else None
    return 1 if last is not None and (after is None or last > after) else 0


def wait_for_first_event(
    store: Store,
    run_id: str,
    child: subprocess.Popen[bytes],
    data_dir: Path,
    *,
    done_before: int = 0,
    checkpoints: bool = True,
    written_after: datetime | None = None,
    timeout_s: float = FIRST_EVENT_TIMEOUT_S,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DetachedRun:
    """Until the run's checkpoint is past `done_before` market events, or it ended.

    A run without `checkpoints` (one process per service) has its first market event
    once the run records one."""
    started = monotonic()
    log = log_path(data_dir, run_id)
    while True:
        checkpoint = store.load_checkpoint(run_id)
        if checkpoints:
            events = checkpoint.market_events if checkpoint else 0
        else:
            events = _written(store, run_id, written_after)
        code = child.poll()
        if events > done_before and code is None:
            return DetachedRun(
                run_id, child.pid, log, "running", events, monotonic() - started, True
            )
        if code is not None:
            record = store.get_run(run_id)
            if code == 0 and record is not None and record.status is not RunStatus.FAILED:
                return DetachedRun(
                    run_id, child.pid, log, record.status.value, events, monotonic() - started, True
                )
            why = record.end_reason if record is not None and record.end_reason else last_error(log)
            raise DetachedRunFailed(
                f"the detached run {run_id} ended at once: {why.rstrip('.')}; its log is {log}."
            )
        if monotonic() - started >= timeout_s:
            return DetachedRun(
                run_id, child.pid, log, "running", events, monotonic() - started, False
            )
        sleep(POLL_S)
