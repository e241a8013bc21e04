"""The three runtimes that drive a run's pipeline, behind one protocol.

- `ProcessRuntime`: the whole pipeline in this process (replay, live or a resume),
  attended by the steward: operator commands, backups, the process record.
- `ServicesRuntime`: one process per service over Redis Streams, supervised here.
- `StackRuntime`: one container per service; this records the run and creates its
  consumer groups inside the stack (`cdb_init`), and the containers drive it.

The lifecycle around them (engine.run.lifecycle) is written once: the request
checked, the preflight, detaching, and what is printed at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import ClaireError
from engine.kernel.progress import ProgressSink
from engine.report.final import FinalReport
from engine.run.outcome import RunOutcome
from engine.run.request import PreparedRun
from engine.run.runner import PaperRunner
from engine.store import RunStatus

Warn = Callable[[str], None]


@dataclass(frozen=True)
class ServicesOutcome:
    """How a services run ended, with its final report when it has one."""

    run_id: str
    status: RunStatus
    stop_signal: int | None
    report: FinalReport | None
    why_no_report: str = ""
    warnings: tuple[str, ...] = ()  # duties that failed (notifications), as `claire status`


@dataclass(frozen=True)
class StackRecord:
    run_id: str
    created: bool  # False: it existed, and its services resume it


class Runtime(Protocol):
    name: str
    checks_first: bool  # the preflight runs before it (the services and the stack check their own)
    shows_progress: bool  # it reports progress to the one who started it

    def run(
        self,
        prepared: PreparedRun,
        preflight: dict[str, Any] | None,
        progress: ProgressSink | None,
        on_warning: Warn | None,
    ) -> Any:
        """Drive the run to its end; what it returns is the runtime's outcome."""
        ...


class ProcessRuntime:
    name = "process"
    checks_first = True
    shows_progress = True

    def run(
        self,
        prepared: PreparedRun,
        preflight: dict[str, Any] | None,
        progress: ProgressSink | None,
        on_warning: Warn | None,
    ) -> RunOutcome:
        from engine.home.processes import log_path
        from engine.run.steward import RunSteward

        r, settings, folder = prepared.request, prepared.settings, prepared.folder
        assert folder is not None
        log_file = log_path(folder, r.as_run or r.run_id or "run") if r.detached_child else None
        attend = RunSteward.factory(folder, settings, detached=r.detached_child, log_file=log_file)
        runner = PaperRunner(
            settings,
            folder,
            choice=prepared.choice,
            on_warning=on_warning,
            attend=attend,
            reports=r.reports,
        )
        if r.resume:
            return runner.resume(r.run_id, r.speed, progress=progress)
        if r.exchange:
            return runner.start_live(
                prepared.feed_settings(), r.days, progress, run_id=r.as_run, preflight=preflight
            )
        return runner.start(
            prepared.files,
            r.days,
            r.speed or "max",
            progress,
            perpetual=prepared.perpetual,
            run_id=r.as_run,
            preflight=preflight,
        )


class ServicesRuntime:
    name = "services"
    checks_first = False
    shows_progress = False

    def run(
        self,
        prepared: PreparedRun,
        preflight: dict[str, Any] | None,
        progress: ProgressSink | None,
        on_warning: Warn | None,
    ) -> ServicesOutcome:
        from engine.home.database import open_store
        from engine.home.processes import run_problems
        from engine.report.final import final_report

        r = prepared.request
        runner = PaperRunner(
            prepared.settings,
            prepared.folder,
            choice=prepared.choice,
            on_warning=on_warning,
            reports=r.reports,
        )
        if r.resume:  # from the state its services kept in Redis
            run_id, status, stop_signal = runner.resume_services(
                r.run_id, detached=r.detached_child
            )
        elif r.exchange:  # live: runs until a stop (or its planned end)
            run_id, status, stop_signal = runner.start_live_services(
                prepared.feed_settings(), r.days, run_id=r.as_run, detached=r.detached_child
            )
        else:
            run_id, status, stop_signal = runner.start_services(
                prepared.files,
                r.days,
                prepared.perpetual,
                speed=r.speed or "max",
                run_id=r.as_run,
                detached=r.detached_child,
            )
        warnings = tuple(run_problems(runner.data_dir, run_id))
        runner.ctx.warn(list(warnings))
        try:
            with open_store(prepared.settings, runner.data_dir) as (store, _):
                report = final_report(store, run_id)
        except ClaireError as exc:  # stopped before its first figures were written
            return ServicesOutcome(run_id, status, stop_signal, None, str(exc), warnings)
        return ServicesOutcome(run_id, status, stop_signal, report, warnings=warnings)


class StackRuntime:
    """Inside the stack: the run (a replay, or live with `exchange`) recorded and its
    consumer groups created before the containers' services start; they drive it, and
    `claire stack wait` follows it."""

    name = "stack"
    checks_first = False
    shows_progress = False

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def run(
        self,
        prepared: PreparedRun,
        preflight: dict[str, Any] | None,
        progress: ProgressSink | None,
        on_warning: Warn | None,
    ) -> StackRecord:
        from engine.run.stack_runs import create_groups, record_stack_live_run, record_stack_run

        r, folder = prepared.request, prepared.folder
        assert folder is not None and r.run_id is not None
        if r.exchange:
            created = record_stack_live_run(
                prepared.settings, folder, r.run_id, prepared.feed_settings(), r.days
            )
        else:
            created = record_stack_run(
                prepared.settings, folder, r.run_id, prepared.files, r.days, r.speed or "max"
            )
        create_groups(self.redis_url, r.run_id)
        return StackRecord(r.run_id, created)


__all__ = [
    "ProcessRuntime",
    "Runtime",
    "ServicesOutcome",
    "ServicesRuntime",
    "StackRecord",
    "StackRuntime",
]
