"""Which run a resume continues, and why one cannot be."""

from __future__ import annotations

from pathlib import Path

from engine.errors import RunNotResumable
from engine.home.lock import run_is_alive
from engine.store import RunRecord, RunStatus, Store


def resumable(
    store: Store, data_dir: Path, run_id: str | None, *, services: bool | None = None
) -> RunRecord:
    """The run a resume would continue (the newest interrupted one by default); with
    `services` given, one that ran the same way (one process per service, or not)."""
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
    if services is not None and ran_as_services(store, run_id) != services:
        if services:
            raise RunNotResumable(
                f"run {run_id} ran in one process: continue it there, with `claire papertest "
                f"start --resume --run {run_id}` (no --services)."
            )
        raise RunNotResumable(
            f"run {run_id} ran as separate services, whose state is kept in Redis: continue "
            f"it with `claire papertest start --services --resume --run {run_id}`."
        )
    return run


def ran_as_services(store: Store, run_id: str) -> bool:
    """Whether the run ran as one process per service (its supervisor recorded them)."""
    return bool(store.service_events(run_id))


__all__ = ["ran_as_services", "resumable"]
