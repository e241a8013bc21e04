"""A replay run as one process per service over Redis Streams, under a supervisor."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from engine.errors import RunNotResumable
from engine.feeds.replay import PerpetualFiles, parse_speed
from engine.home.lock import RunLock, run_started
from engine.home.processes import forget_process, log_path, record_process
from engine.run.context import RunContext
from engine.run.create import create_replay_run
from engine.run.services_steward import ServicesSteward
from engine.store import DatabaseUnavailable, RunStatus, Store
from engine.store.retry import OutageTolerance

log = logging.getLogger("claire.run")


def run_services(
    ctx: RunContext,
    files: list[Path],
    days: float | None,
    perpetual: PerpetualFiles | None = None,
    ports: dict[str, int] | None = None,
    speed: str = "max",
    *,
    run_id: str | None = None,
    detached: bool = False,
    reports: bool = False,
) -> tuple[str, RunStatus, int | None]:
    """Record the run, supervise its services until it ends, record how it ended.

    `run_id` names a run a detached start chose (`detached`: this process is its
    daemon, logging to `runs/RUN_ID.log`). Returns the run id, how it ended and the
    signal that stopped it, if one did.
    """
    with ctx.store() as (store, _):
        parse_speed(speed)
        run_id, _ = create_replay_run(ctx, store, files, days, speed, perpetual, run_id)
        return supervise_run(ctx, store, run_id, ports, detached=detached, reports=reports)


def resume_services(
    ctx: RunContext,
    run_id: str | None,
    ports: dict[str, int] | None = None,
    *,
    detached: bool = False,
    reports: bool = False,
) -> tuple[str, RunStatus, int | None]:
    """Continue an interrupted run as services (the newest one by default): each service
    takes up the state it kept in the run's Redis, the feed where it stopped publishing
    (a live one backfills the gap over REST), and the supervisor and its steward attend
    the run as when it started. A live run writes each day's report, as when started."""
    from engine.run.resumable import resumable
    from engine.services.live_run import is_live

    with ctx.store() as (store, _):
        run = resumable(store, ctx.data_dir, run_id, services=True)
        _require_services_state(ctx, run.run_id)
        if run.status is not RunStatus.RUNNING:
            store.reopen_run(run.run_id)
        log.info("resuming run %s as services", run.run_id, extra={"run_id": run.run_id})
        return supervise_run(
            ctx, store, run.run_id, ports, detached=detached, reports=reports or is_live(run)
        )


def _require_services_state(ctx: RunContext, run_id: str) -> None:
    """The run's streams and its services' state must still be in its Redis: without
    them its services would start over and publish again what they had."""
    from engine.bus.redis import RedisBus
    from engine.runtime.redis import redis_service
    from engine.services.host import stream_prefix

    server = redis_service(ctx.data_dir)
    bus = RedisBus(server.start(), prefix=stream_prefix(run_id))
    try:
        kept = bool(bus.redis.exists(bus.key("market_data")))
    finally:
        bus.close()
        server.stop()
    if not kept:
        raise RunNotResumable(
            f"run {run_id}'s streams are not in its Redis any more (the data folder's "
            "redis/ was removed, or CLAIRE_REDIS_URL names another server), and its "
            "services would start over: start a new run."
        )


def supervise_run(
    ctx: RunContext,
    store: Store,
    run_id: str,
    ports: dict[str, int] | None = None,
    *,
    detached: bool = False,
    reports: bool = False,
) -> tuple[str, RunStatus, int | None]:
    """Supervise a recorded run's services (a replay's or a live one's) until it ends,
    attended by its steward; record how it ended."""
    from engine.services.ports import service_ports
    from engine.services.supervisor import ServiceFailed, Supervisor

    lock = RunLock(ctx.data_dir, run_id)
    lock.acquire()
    run_started()
    # Its process file: `claire papertest stop --emergency` sends this process SIGTERM.
    log_file = log_path(ctx.data_dir, run_id) if detached else None
    record_process(ctx.data_dir, run_id, detached=detached, log=log_file, clock=ctx.clock)
    steward = ServicesSteward(store, run_id, ctx.data_dir, ctx.settings, reports=reports)
    supervisor = Supervisor(
        store,
        run_id,
        ctx.data_dir,
        ports=ports or service_ports(ctx.settings),
        attendant=steward,
    )
    # The services ride out a database outage; so does the record of how it ended.
    patient = OutageTolerance(seconds=ctx.settings.db_outage_tolerance_seconds)

    def record_end(status: RunStatus, reason: str | None) -> None:
        patient.call(
            lambda: supervisor.flush_records(force=True) or _still_down(),
            "recording the services' events",
        )
        patient.call(
            lambda: store.end_run(run_id, status, ctx.clock.now(), reason),
            f"recording the end of run {run_id}",
        )

    try:
        status = supervisor.run()
    except ServiceFailed as exc:
        lock.release()
        record_end(RunStatus.FAILED, str(exc))
        steward.close()
        forget_process(ctx.data_dir, run_id)
        if reports and store.db.fetch_one(store.queries["final_snapshot"], {"run_id": run_id}):
            write_reports(ctx, store, run_id)  # none for a run that failed before figures
        raise RunNotResumable(str(exc)) from None
    except BaseException:
        lock.release()
        forget_process(ctx.data_dir, run_id)
        raise
    lock.release()
    reason = None
    if supervisor.ending is not None:
        reason = supervisor.ending.reason
    elif status is RunStatus.STOPPED and supervisor.stop_signal is not None:
        reason = f"stopped by {signal.Signals(supervisor.stop_signal).name}"
    try:
        record_end(status, reason)
        steward.close()  # a stop's backup, final report and answer
    finally:
        forget_process(ctx.data_dir, run_id)
    if status is RunStatus.COMPLETED and reports:  # a replay's, when asked (--reports)
        write_reports(ctx, store, run_id)
    return run_id, status, supervisor.stop_signal


def write_reports(ctx: RunContext, store: Store, run_id: str) -> None:
    """The daily and final reports of a services run, once it has ended; a report
    that fails is logged, never fatal."""
    from engine.report.autowrite import write_reports_after

    if not ctx.settings.claire_auto_reports:
        return
    try:
        write_reports_after(store.db.url, ctx.data_dir, run_id)
    except Exception:
        log.exception(
            "could not write the reports of run %s", run_id, extra={"event": "report_failed"}
        )


def record_services_run(
    ctx: RunContext, files: list[Path], days: float | None, speed: str, run_id: str
) -> bool:
    """Record a replay run whose services are started elsewhere (a container stack);
    False when `run_id` exists already (its services resume it)."""
    parse_speed(speed)
    with ctx.store() as (store, _):
        if store.get_run(run_id) is not None:
            return False
        create_replay_run(ctx, store, files, days, speed, None, run_id)
        return True


def _still_down() -> bool:
    raise DatabaseUnavailable("the database does not answer yet", "unreachable")


__all__ = [
    "record_services_run",
    "resume_services",
    "run_services",
    "supervise_run",
    "write_reports",
]
