"""Which run a resume continues, and why one cannot be."""

from __future__ import annotations

from pathlib import Path

from engine.errors import RunNotResumable
from engine.home.lock import run_is_alive
from engine.store import RunRecord, RunStatus, Store


def resumable(store: Store, data_dir: Path, run_id: str | None) -> RunRecord:
    """The run a resume would continue (the newest interrupted one by default)."""
    runs = store.list_runs()
    if run_id is None:
        # A run another process is running right now is not interrupted.
        candidates = [
            r
            for r in runs
            if r.status in (RunStatus.RUNNING, RunStatus.CRASHED, RunStatus.STOPPED)
            and not run_is_alive(data_dir, r.run_id)
        ]
        if not candidates:
            raise RunNotResumable(
                f"no interrupted run in {data_dir}; start one with "
                "`claire papertest start --replay FILE`."
            )
        run_id = max(candidates, key=lambda r: r.started_at).run_id
    run = store.get_run(run_id)
    if run is None:
        raise RunNotResumable(f"no run {run_id} in {data_dir}; check the run id.")
    if run.status is RunStatus.COMPLETED:
        raise RunNotResumable(f"run {run_id} already completed; start a new run instead.")
    if run.status is RunStatus.FAILED:
        why = f" ({run.end_reason})" if run.end_reason else ""
        raise RunNotResumable(
            f"run {run_id} failed{why}; a resume would repeat the error: fix its cause and "
            "start a new run."
        )
    return run


__all__ = ["resumable"]
