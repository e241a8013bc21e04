"""Which process runs a run: its process file, and whether it is alive.

A run's process writes `runs/<run_id>.process.json` in the data folder when it
takes the run (pid, start time, whether it is detached and where its log goes)
and removes it when it lets go. The run's lock (`runs/<run_id>.lock`, held by
the kernel for the process's life) says whether the run is being run at all;
the process file says by whom, for `claire status` and `claire papertest stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from engine.clock import Clock, WallClock
from engine.home.lock import run_is_alive
from engine.runtime.files import write_json


@dataclass(frozen=True, slots=True)
class RunProcess:
    run_id: str
    pid: int
    started_at: datetime  # when it took the run
    created: float = 0.0  # the process's creation time (epoch s), to tell a reused pid
    detached: bool = False
    log: str | None = None
    command: list[str] = field(default_factory=list)
    http_port: int | None = None  # where it serves /health and /metrics, when it does

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["started_at"] = self.started_at.isoformat()
        return out


def runs_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "runs"


def process_path(data_dir: Path, run_id: str) -> Path:
    return runs_folder(data_dir) / f"{run_id}.process.json"


def log_path(data_dir: Path, run_id: str) -> Path:
    return runs_folder(data_dir) / f"{run_id}.log"


def record_process(
    data_dir: Path,
    run_id: str,
    *,
    detached: bool = False,
    log: Path | None = None,
    clock: Clock | None = None,
) -> RunProcess:
    """This process runs `run_id`: say so in the data folder."""
    record = RunProcess(
        run_id=run_id,
        pid=os.getpid(),
        started_at=(clock or WallClock()).now(),
        created=psutil.Process().create_time(),
        detached=detached,
        log=str(log) if log else None,
        command=list(sys.argv),
    )
    runs_folder(data_dir).mkdir(parents=True, exist_ok=True)
    write_json(process_path(data_dir, run_id), record.as_json())
    return record


def read_process(data_dir: Path, run_id: str) -> RunProcess | None:
    try:
        body = json.loads(process_path(data_dir, run_id).read_text(encoding="utf-8"))
        return RunProcess(
            run_id=str(body["run_id"]),
            pid=int(body["pid"]),
            started_at=datetime.fromisoformat(body["started_at"]).astimezone(UTC),
            created=float(body.get("created", 0.0)),
            detached=bool(body.get("detached", False)),
            log=body.get("log"),
            command=list(body.get("command") or []),
            http_port=int(body["http_port"]) if body.get("http_port") else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def note_http_port(data_dir: Path, run_id: str, port: int) -> None:
    """Add the HTTP port this process serves the run on to its process file."""
    record = read_process(data_dir, run_id)
    if record is not None and record.pid == os.getpid():
        body = record.as_json() | {"http_port": port}
        write_json(process_path(data_dir, run_id), body)


def problems_path(data_dir: Path, run_id: str) -> Path:
    return runs_folder(data_dir) / f"{run_id}.problems.json"


def note_problems(data_dir: Path, run_id: str, problems: list[str]) -> None:
    """Keep what failed in a run's background duties (backups, reports) for `claire status`."""
    known = run_problems(data_dir, run_id)
    new = [p for p in problems if p not in known]
    if new:
        runs_folder(data_dir).mkdir(parents=True, exist_ok=True)
        write_json(problems_path(data_dir, run_id), {"problems": known + new})


def run_problems(data_dir: Path, run_id: str) -> list[str]:
    try:
        body = json.loads(problems_path(data_dir, run_id).read_text(encoding="utf-8"))
        return [str(p) for p in body["problems"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def forget_process(data_dir: Path, run_id: str) -> None:
    """Remove the process file if it is ours (a later process may have taken the run)."""
    record = read_process(data_dir, run_id)
    if record is not None and record.pid == os.getpid():
        process_path(data_dir, run_id).unlink(missing_ok=True)


def same_process(record: RunProcess) -> bool:
    """The recorded pid is still the process that recorded itself (not a reused pid)."""
    try:
        created = psutil.Process(record.pid).create_time()
    except (psutil.Error, OSError):
        return False
    return abs(created - record.created) < 1.0


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is dead)."""
    with contextlib.suppress(psutil.Error, OSError):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


def locked_runs(data_dir: Path) -> list[str]:
    """The runs of the data folder some process is running right now, by their locks."""
    folder = runs_folder(data_dir)
    if not folder.is_dir():
        return []
    ids = sorted(p.name.removesuffix(".lock") for p in folder.glob("*.lock"))
    return [run_id for run_id in ids if run_is_alive(Path(data_dir), run_id)]
