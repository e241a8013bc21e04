"""The engine's run API: `start`, `resume`, `stop` and `status`, the same for every runtime.

A start is: the request checked (engine.run.request), the runtime chosen, the
preflight (kept with the run; a no-go stops here), then either a detached process
that runs the same request, or the runtime driving the run to its end. Daily
backups and reports, operator commands and the record of the outcome happen
inside the run (engine.run.steward, engine.run.duties, engine.run.session).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.errors import ConfigError
from engine.feeds.replay import sharing_plans
from engine.home.database import open_store
from engine.home.lock import StartLock
from engine.kernel.pipeline import RunSummary
from engine.kernel.progress import ProgressSink
from engine.kernel.recorded import new_run_id
from engine.ops.commands import Operator
from engine.ops.control import Command, check_note
from engine.ops.detach import DetachedRun, save_preflight, spawn, wait_for_first_event
from engine.ops.preflight_setup import preflight_context, preflight_for_run
from engine.report.access import NoDataError, has_claire_data, open_data
from engine.report.status import RunStatusView, run_statuses
from engine.run.request import PreparedRun, RunRequest, prepare
from engine.run.resumable import resumable
from engine.run.runtimes import ProcessRuntime, Runtime, ServicesRuntime, StackRuntime

Warn = Callable[[str], None]
# Shows a run's progress while its runtime drives it (entered only then).
Progress = Callable[[], AbstractContextManager[ProgressSink | None]]


@dataclass(frozen=True)
class InMemoryOutcome:
    """A run kept in memory (`--no-persist`): its figures, and the signal that stopped it."""

    summary: RunSummary
    stop_signal: int | None


@dataclass(frozen=True)
class Detached:
    run: DetachedRun
    data_dir: Path


def runtime_for(prepared: PreparedRun, redis_url: str | None = None) -> Runtime:
    name = prepared.request.runtime
    if name == "services":
        return ServicesRuntime()
    if name == "stack":
        if redis_url is None:
            raise ConfigError("CLAIRE_REDIS_URL is not set; the stack's services need its Redis.")
        return StackRuntime(redis_url)
    return ProcessRuntime()


def start(
    request: RunRequest,
    progress: Progress | None = None,
    on_warning: Warn | None = None,
    debug: bool = False,
) -> Any:
    """Start (or resume) the run asked for and drive it to its end, or detach it.

    Returns the runtime's outcome (`RunOutcome`, `ServicesOutcome`, `StackRecord`),
    an `InMemoryOutcome` for `--no-persist`, or `Detached`. The replay's files are read
    once for the preflight's check and the run.
    """
    with sharing_plans():
        return _start(request, progress, on_warning, debug)


def _start(
    request: RunRequest, progress: Progress | None, on_warning: Warn | None, debug: bool
) -> Any:
    prepared = prepare(request)
    if not request.persist:
        with _showing(progress) as sink:
            return _in_memory(prepared, sink, on_warning)
    redis = prepared.settings.claire_redis_url
    runtime = runtime_for(prepared, redis.get_secret_value() if redis else None)
    if request.resume:
        _require_data(prepared)
    with ExitStack() as hold:  # the server the checks start stays up for the run
        if runtime.name != "stack" and not request.detached_child:
            assert prepared.folder is not None
            # One start at a time in a folder: held until the run holds its own lock.
            hold.enter_context(StartLock(prepared.folder))
        checked = None
        if runtime.checks_first:
            checked = _preflight(prepared, hold, on_warning)
        if request.detach:
            return _detach(prepared, hold, checked or {}, debug)
        with _showing(progress if runtime.shows_progress else None) as sink:
            return runtime.run(prepared, checked, sink, on_warning)


def resume(
    run_id: str | None = None,
    speed: str | None = None,
    data_dir: Path | str | None = None,
    progress: Progress | None = None,
    on_warning: Warn | None = None,
) -> Any:
    """Continue an interrupted run (the newest one by default) from its checkpoint."""
    request = RunRequest(resume=True, run_id=run_id, speed=speed, data_dir=data_dir)
    return start(request, progress, on_warning)


@dataclass(frozen=True)
class StopResult:
    answer: Command
    bundle: Path | None  # an emergency stop's incident bundle


def stop(
    settings: Settings,
    data_dir: Path | str | None,
    run_id: str | None,
    *,
    emergency: bool = False,
    reason: str | None = None,
    timeout_s: float = 300.0,
) -> StopResult:
    """A planned stop (flat, final snapshot, backup, final report) or an emergency one
    (stop now, incident bundle, backup), through the run's control channel."""
    from engine.incidents.desk import incident_desk

    if emergency and not reason:
        raise ConfigError("an emergency stop needs --reason TEXT: say why, it is kept.")
    why = check_note(reason or "planned stop", "--reason")
    with open_data(settings, data_dir) as data:
        answer = Operator(data.store, data.folder).stop(
            why, run_id, emergency=emergency, timeout_s=timeout_s
        )
    if answer.status.value == "refused":
        from engine.ops.control import CommandError

        why_not = answer.result.get("reason", "no reason given")
        raise CommandError(f"run {answer.run_id} refused to stop: {why_not}.")
    bundle = None
    if emergency:
        with incident_desk(settings, data_dir) as desk:
            bundle = desk.emergency_bundle(answer.run_id).path
    return StopResult(answer, bundle)


def status(
    settings: Settings, data_dir: Path | str | None, run_id: str | None = None
) -> tuple[list[RunStatusView], str]:
    """The runs of the data folder (or `run_id`): progress, equity, PnL, fills, state;
    and where they are kept."""
    with open_data(settings, data_dir) as data:
        if run_id is not None:
            data.run_id(run_id)  # "no run X in FOLDER" when it is not there
        return run_statuses(data.store, data.folder, run_id), data.where


def _preflight(prepared: PreparedRun, hold: ExitStack, on_warning: Warn | None) -> dict[str, Any]:
    r = prepared.request
    ctx = preflight_context(
        prepared.folder, list(r.replay), r.exchange, r.symbols, r.market, r.days,
        settings=prepared.settings, hold=hold, resuming=r.resume, perpetual=prepared.perpetual,
    )  # fmt: skip
    given = r.preflight_file
    return preflight_for_run(
        ctx, r.ignore_checks, skip=r.skip_preflight, given=given, on_warning=on_warning
    )


def _detach(
    prepared: PreparedRun, hold: ExitStack, checked: dict[str, Any], debug: bool
) -> Detached:
    """Start the run in a daemon process and wait for its first market event."""
    r, folder = prepared.request, prepared.folder
    assert folder is not None
    store, _ = hold.enter_context(open_store(prepared.settings, folder))
    done_before = 0
    written_after = None
    if r.resume:
        services = r.runtime == "services"
        record = resumable(store, folder, r.run_id, services=services)
        chosen = record.run_id
        checkpoint = store.load_checkpoint(chosen)
        done_before = checkpoint.market_events if checkpoint else 0
        args = ["papertest", "start", "--resume", "--run", chosen, "--data-dir", str(folder)]
        args += ["--speed", r.speed] if r.speed else []
        args += ["--services"] if services else []
        if services:  # its first market event is the first after the resume
            written_after = record.last_event_ts
    else:
        chosen = new_run_id(datetime.now(UTC))
        args = [*r.child_args(folder), "--as-run", chosen]
    handed = save_preflight(folder, chosen, checked)
    args += ["--skip-preflight", "--preflight-file", str(handed), "--detached-child"]
    if debug:
        args.insert(0, "--debug")
    child = spawn(args, folder, chosen)
    return Detached(
        wait_for_first_event(
            store,
            chosen,
            child,
            folder,
            done_before=done_before,
            checkpoints=r.runtime != "services",
            written_after=written_after,
        ),
        folder,
    )


def _showing(progress: Progress | None) -> AbstractContextManager[ProgressSink | None]:
    return progress() if progress is not None else nullcontext(None)


def _require_data(prepared: PreparedRun) -> None:
    """A resume reads a run first: a folder without Claire data is a typo, not a new database."""
    folder = prepared.folder
    assert folder is not None
    if prepared.settings.claire_postgres_url is None and not has_claire_data(folder):
        raise NoDataError(f"no Claire data in {folder}; check --data-dir (or CLAIRE_HOME).")


def _in_memory(
    prepared: PreparedRun, progress: ProgressSink | None, on_warning: Warn | None
) -> InMemoryOutcome:
    from engine.feeds.replay import parse_speed
    from engine.kernel.pipeline import run_replay
    from engine.stopping import StopSignals

    r = prepared.request
    with StopSignals() as stop_signals:
        summary, _ = run_replay(
            prepared.settings,
            prepared.files,
            days=r.days,
            speed=parse_speed(r.speed or "max"),
            progress=progress,
            choice=prepared.choice,
            stop=stop_signals,
            on_warning=on_warning,
            perpetual=prepared.perpetual,
        )
    return InMemoryOutcome(summary, stop_signals.signum)


__all__ = [
    "Detached",
    "InMemoryOutcome",
    "StopResult",
    "resume",
    "runtime_for",
    "start",
    "status",
    "stop",
]
