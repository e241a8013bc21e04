"""A paper run with every event in PostgreSQL, and its crash-safe resume.

The pipeline runs in this process; its events are buffered and written in one
transaction per batch together with a checkpoint of the pipeline's state taken
right after the batch's last market event. A run killed at any moment therefore
has, in the database, a consistent prefix of its events and the exact state that
produced them. `resume_run` rebuilds the pipeline from that checkpoint, checks it
against the stored fills, and continues with the next market event: no fill is
lost or doubled, and the fills are those of a run that never stopped.

How a run ends: `completed`; `stopped` (Ctrl-C, SIGTERM); interrupted, when the
database stayed away longer than DB_OUTAGE_TOLERANCE_SECONDS or the process died
(both resumable); `failed` only for an error a resume would repeat.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.checkpoint import capture, restore
from engine.clock import Clock, WallClock
from engine.config import Settings, load_settings
from engine.errors import ClaireError, ConfigError, StrategyError
from engine.events import Event, MarketData, MarketEvent
from engine.feeds.replay import (
    PerpetualFiles,
    ReplayPlan,
    log_rejected,
    paced,
    parse_speed,
    plan_replay,
)
from engine.kernel import (
    Pipeline,
    RunSummary,
    build_replay_pipeline,
    by_time,
    replay_end,
    summarize,
)
from engine.limits import check_days
from engine.ops.run_checks import entry_fraction, replay_warnings, strategy_warnings
from engine.ops.run_ops import RunOps
from engine.progress import ProgressFeed, ProgressSink
from engine.runtime import default_data_dir, postgres_service, redact_url
from engine.services.run_metrics import RunMetrics, serving
from engine.signal.loader import StrategyChoice, json_values
from engine.stopping import OperatorStop, StopRequested, StopSignals
from engine.store import DatabaseUnavailable, EventWriter, RunRecord, RunStatus, Store
from engine.store.retry import OutageTolerance
from engine.store.runs import Checkpoint

if TYPE_CHECKING:
    from engine.feeds.exchange import FeedSettings

log = logging.getLogger("claire.run")

FINAL_SNAPSHOT_CAUSE = "run-end"
# Secrets and machine-local paths are not part of what a run decides with.
_NOT_REPLAYED = {
    "db_outage_tolerance_seconds",
    "claire_home",
    "claire_postgres_url",
    "claire_redis_url",
    "mexc_api_key",
    "mexc_api_secret",
    "claire_notify_urls",
    "claire_notify_queue",
    "claire_notify_retries",
    "claire_log_max_bytes",
    "claire_log_backups",
    "claire_log_level",
    "claire_health_interval_s",
    "claire_auto_reports",
    "backup_dir",
    "backup_retention_days",
    "backup_schedule",
    "backup_max_age_hours",
    "preflight_min_disk_gb",
    "preflight_min_memory_gb",
    "max_clock_skew_ms",
}


class RunNotResumable(ClaireError):
    pass


class RunInterrupted(ClaireError):
    """The run stopped on an outage; its checkpoint is intact and it can be resumed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: flush, record the stop, shut down cleanly."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: RunStatus
    summary: RunSummary
    data_dir: Path
    database: str  # redacted URL
    resumed_from: int  # market events already done before this process started
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    speed: str | None = None  # replay speed as given (and kept on resume)
    warnings: tuple[str, ...] = ()
    stop_signal: int | None = None  # set when Ctrl-C or SIGTERM stopped the run
    data_source: str = ""

    @property
    def stopped(self) -> bool:
        return self.status is RunStatus.STOPPED


class RunLock:
    """Held by the process that runs a run; released by the kernel even after kill -9."""

    def __init__(self, data_dir: Path, run_id: str) -> None:
        folder = data_dir / "runs"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{run_id}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class RunAttendant(Protocol):
    """What attends a persisted run between its market events (engine.ops: operator
    commands through the control channel, backups); made once the run is held."""

    def between(self) -> None:
        """Between two groups of market events; may raise OperatorStop."""

    def pace(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        """The wait of a paced replay, wrapped so that commands are seen while waiting."""
        ...

    def close(self) -> None:
        """After the run's end is recorded, or it failed: finish what was begun; never raises."""


Attend = Callable[["Store", "PersistedRun"], RunAttendant]


def new_run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def settings_from_snapshot(snapshot: dict[str, Any]) -> Settings:
    """The settings a run started with; secrets and paths come from this environment."""
    chosen = {k: v for k, v in snapshot.items() if k not in _NOT_REPLAYED}
    return load_settings(**chosen)


class PersistedRun:
    """Drives a pipeline and writes what it publishes, with checkpoints, in batches."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        build: Callable[[Callable[[Event], None]], Pipeline],
        flush_every_events: int = 1000,
        flush_every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        tolerance: OutageTolerance | None = None,
    ) -> None:
        self.run_id = run_id
        self.writer = EventWriter(store, run_id)
        self.tolerance = tolerance or OutageTolerance(seconds=0)
        self._buffer: list[Event] = []
        self.pipeline = build(self._buffer.append)
        self._flush_every_events = flush_every_events
        self._flush_every_s = flush_every_s
        self._monotonic = monotonic
        self._pending = 0
        self._last_flush = monotonic()
        self._last_event: MarketData | None = None
        self.rows_written = 0
        self.busy = False
        self.on_flush: Callable[[], None] | None = None  # told after each commit
        # A live run's feed: drop its connection and backfill (why -> sockets dropped).
        self.reconnect: Callable[[str], int] | None = None
        # Called with the UTC day that ended when market time crosses 00:00 UTC, after
        # the batch holding that day's last events is written (daily backups, reports).
        self.on_new_day: list[Callable[[date], None]] = []
        self.day: date | None = None  # the UTC day of market time so far

    def process(self, event: MarketData) -> None:
        self.process_group((event,))

    def process_group(self, events: Sequence[MarketData]) -> None:
        """Market events that share one time; a checkpoint only ever falls between groups."""
        day = events[0].ts.date()
        if self.day is not None and day > self.day:
            ended, self.day = self.day, day
            self.flush()
            for callback in self.on_new_day:
                callback(ended)
        self.day = day
        self.busy = True  # until the events and all they cause are delivered
        self.pipeline.process_group(events)
        self.busy = False
        self._last_event = events[-1]
        self._pending += len(events)
        if (
            self._pending >= self._flush_every_events
            or self._monotonic() - self._last_flush >= self._flush_every_s
        ):
            self.flush()

    def flush(self, patient: bool = True) -> None:
        """Write the buffered events and the state after the last market event, atomically.

        While the database is unreachable the same batch is written again, for up to
        the run's outage tolerance (`patient=False`: once, for a run being stopped).
        """
        last = self._last_event
        if last is None and not self._buffer:
            return
        checkpoint = None
        if last is not None:
            checkpoint = Checkpoint(
                last_event_id=last.event_id,
                last_event_ts=last.ts,
                market_events=self.pipeline.stats.market_events,
                state=capture(self.pipeline),
            )

        def write() -> int:
            return self.writer.write(self._buffer, checkpoint)

        if patient:
            self.rows_written += self.tolerance.call(write, f"writing run {self.run_id}")
        else:
            self.rows_written += write()
        self._buffer.clear()
        self._pending = 0
        self._last_flush = self._monotonic()
        if self.on_flush is not None:
            self.on_flush()

    def finish(self) -> None:
        """A last snapshot with the final marks, then everything to the database."""
        if self._last_event is not None:
            self.pipeline.portfolio.snapshot(self.pipeline.clock.now(), FINAL_SNAPSHOT_CAUSE)
        self.flush()


def _record_rejected(store: Store, run_id: str, plan: ReplayPlan) -> None:
    """The run keeps the input rows it refused, with their reasons, and their counts.

    Sources are absolute paths, as in the run's config, so a resume (which reads
    the files by those paths) records the same rows rather than new ones.
    """
    rows = [(str(Path(r.path).resolve()), r.line, r.reason) for r in plan.rejected]
    counts = [
        (str(f.source.path.resolve()), code, n)
        for f in plan.files
        for code, n in sorted(f.refusals.by_reason.items())
    ]
    store.record_rejected_input(run_id, rows, counts)


def _interrupted(run_id: str, exc: DatabaseUnavailable) -> RunInterrupted:
    return RunInterrupted(
        f"run {run_id} is interrupted: {str(exc).rstrip('.')}; it continues from its last "
        "checkpoint with `claire papertest start --resume` once PostgreSQL is back."
    )


def _check_against_fills(store: Store, run_id: str, pipeline: Pipeline) -> None:
    """The restored positions must be what the stored fills add up to."""
    rows = store.db.fetch_all(store.queries["net_position_by_symbol"], {"run_id": run_id})
    from_fills = {r["symbol"]: Decimal(r["qty"]) for r in rows if Decimal(r["qty"]) != 0}
    restored = {s: p.qty for s, p in pipeline.portfolio.positions.items()}
    if from_fills != restored:
        raise RunNotResumable(
            f"run {run_id}'s checkpoint does not match its stored fills ({restored} vs "
            f"{from_fills}); the database was changed by hand: start a new run instead."
        )


class PaperRunner:
    """Opens the data folder's database, runs or resumes a replay run, and closes it all.

    `choice` is the strategy and its parameters (default: the settings' STRATEGY);
    `on_warning` hears, before a new run starts, what looks wrong about it.
    """

    def __init__(
        self,
        settings: Settings,
        data_dir: Path | str | None = None,
        clock: Clock | None = None,
        flush_every_events: int = 1000,
        choice: StrategyChoice | None = None,
        on_warning: Callable[[str], None] | None = None,
        attend: Attend | None = None,
    ) -> None:
        self.settings = settings
        self.attend = attend
        self.data_dir = resolve_data_dir(data_dir, settings)
        self.clock = clock or WallClock()
        self.flush_every_events = flush_every_events
        self.choice = choice or StrategyChoice(settings.strategy)
        self._on_warning = on_warning
        self._warnings: list[str] = []
        self.tolerance = OutageTolerance(seconds=settings.db_outage_tolerance_seconds)
        self._ops = RunOps(settings, self.data_dir)  # logs, alerts out, reports

    def _store(self) -> AbstractContextManager[tuple[Store, str]]:
        return open_store(self.settings, self.data_dir)

    def _warn(self, warnings: list[str]) -> None:
        for warning in warnings:
            self._warnings.append(warning)
            log.warning(warning, extra={"event": "run_warning"})
            if self._on_warning is not None:
                self._on_warning(warning)

    def _config(
        self, settings: Settings, preflight: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        config = {"settings": settings.redacted(), "strategy": self.choice.as_config()}
        if preflight is not None:
            config["preflight"] = preflight  # the go/no-go the run started on
        return config

    def _attendant(self, store: Store, run: PersistedRun) -> RunAttendant | None:
        return self.attend(store, run) if self.attend is not None else None

    def start_live(
        self,
        feed_settings: FeedSettings,
        days: float | None,
        progress: ProgressSink | None = None,
        *,
        run_id: str | None = None,
        preflight: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """A live run; `run_id` names it (default: a new id), `preflight` is kept with it."""
        check_days(days)
        strategy = self.choice.strategy_class()  # fail before anything is created
        kinds = {"trades"} | ({"candles"} if feed_settings.candle_timeframe else set())
        self._warn(strategy_warnings(strategy, kinds))
        return asyncio.run(
            self._live(feed_settings, days, None, progress, new_id=run_id, preflight=preflight)
        )

    async def _live(
        self,
        feed_settings: FeedSettings,
        days: float | None,
        resume: RunRecord | None,
        progress: ProgressSink | None,
        new_id: str | None = None,
        preflight: dict[str, Any] | None = None,
    ) -> RunOutcome:
        from engine.feeds.exchange import LiveFeed
        from engine.live import build_live_pipeline, drive, live_specs

        feed = LiveFeed(feed_settings)
        try:
            await feed.start()
            specs = await live_specs(feed)
            quotes = {s.quote for s in specs.values()}
            if len(quotes) != 1:
                raise ConfigError(
                    f"symbols are quoted in {', '.join(sorted(quotes))}; one run values everything "
                    "in one quote currency, so choose symbols with the same quote."
                )
            quote = quotes.pop()
            with self._store() as (store, database), ExitStack() as stack:
                settings = self.settings
                checkpoint = None
                if resume is None:
                    started = self.clock.now()
                    run_id = new_id or new_run_id(started)
                    planned_end = started + timedelta(days=days) if days else None
                    store.create_run(
                        run_id,
                        config={
                            **self._config(settings, preflight),
                            "live": {
                                "exchange": feed_settings.exchange,
                                "market": feed_settings.market,
                                "symbols": list(feed_settings.symbols),
                                "timeframe": feed_settings.candle_timeframe,
                                "days": days,
                            },
                            "quote_currency": quote,
                            "window": {
                                "start": started.isoformat(),
                                "end": planned_end.isoformat() if planned_end else None,
                            },
                        },
                        data_source=f"{feed_settings.exchange} {feed_settings.market}: "
                        + ",".join(feed_settings.symbols),
                        started_at=started,
                        planned_end=planned_end,
                    )
                    market_start = started
                else:
                    run_id, planned_end = resume.run_id, resume.planned_end
                    settings = settings_from_snapshot(resume.config.get("settings", {}))
                    self.choice = StrategyChoice.from_config(resume.config, settings.strategy)
                    checkpoint = store.load_checkpoint(run_id)
                    market_start = resume.started_at
                    if resume.status is not RunStatus.RUNNING:
                        store.reopen_run(run_id)
                choice = self.choice
                metrics = RunMetrics(run_id)
                resumed_at = checkpoint.last_event_ts if checkpoint else None
                ops = stack.enter_context(self._ops.session(store, run_id, resumed_at=resumed_at))

                def build(observer: Callable[[Event], None]) -> Pipeline:
                    return build_live_pipeline(
                        settings,
                        specs,
                        choice.build(),
                        observers=[observer, ops.observe, metrics.observe],
                    )

                stop_signal = None
                # SIGTERM (docker stop, service managers) stops a live run as Ctrl-C does.
                loop = asyncio.get_running_loop()
                task = asyncio.current_task()
                terminated: list[int] = []

                def on_sigterm() -> None:
                    terminated.append(signal.SIGTERM)
                    if task is not None:
                        task.cancel()

                loop.add_signal_handler(signal.SIGTERM, on_sigterm)
                attendant: RunAttendant | None = None
                try:
                    with (
                        serving(
                            metrics,
                            self._checks(store),
                            self.settings.claire_http_host,
                            self.settings.http_port(),
                        ),
                        self._session(store, run_id, build, checkpoint) as (run, done),
                    ):
                        ops.attach(run)
                        run.reconnect = feed.reconnect
                        attendant = self._attendant(store, run)
                        feed_progress = self._progress(
                            run.pipeline, progress, market_start, planned_end, quote
                        )
                        await drive(
                            feed,
                            run.pipeline,
                            _attended(run.process, attendant),
                            warmup=checkpoint is None,
                            until=planned_end,
                            progress=feed_progress,
                        )
                except asyncio.CancelledError:
                    # asyncio turns Ctrl-C into cancellation; SIGTERM cancels through on_sigterm.
                    stop_signal = terminated[0] if terminated else signal.SIGINT
                except OperatorStop:
                    pass  # recorded as stopped, with the operator's reason
                finally:
                    loop.remove_signal_handler(signal.SIGTERM)
                    if attendant is not None:
                        attendant.close()
                summary = self._summary(run.pipeline, None, quote, market_start)
                return self._outcome(store, database, run_id, summary, done, None, stop_signal)
        finally:
            await feed.close()

    def start(
        self,
        files: list[Path],
        days: float | None,
        speed: str,
        progress: ProgressSink | None = None,
        perpetual: PerpetualFiles | None = None,
        *,
        run_id: str | None = None,
        preflight: dict[str, Any] | None = None,
    ) -> RunOutcome:
        """A replay run; `run_id` names it (default: a new id), `preflight` is kept with it."""
        factor = parse_speed(speed)
        with self._store() as (store, database):
            run_id, plan = self._create_replay_run(
                store, files, days, speed, perpetual, run_id, preflight
            )
            return self._drive(
                store, database, run_id, plan, self.settings, None, factor, speed, progress
            )

    def start_services(
        self,
        files: list[Path],
        days: float | None,
        perpetual: PerpetualFiles | None = None,
        ports: dict[str, int] | None = None,
        speed: str = "max",
    ) -> tuple[str, RunStatus, int | None]:
        """A replay run as one process per service over Redis Streams, supervised.

        Returns the run id, how it ended and the signal that stopped it, if one did.
        """
        from engine.services.supervisor import ServiceFailed, Supervisor

        with self._store() as (store, _):
            parse_speed(speed)
            run_id, _ = self._create_replay_run(store, files, days, speed, perpetual)
            lock = RunLock(self.data_dir, run_id)
            lock.acquire()
            supervisor = Supervisor(store, run_id, self.data_dir, ports=ports or service_ports())
            # The services ride out a database outage; so does the record of how it ended.
            patient = OutageTolerance(seconds=self.settings.db_outage_tolerance_seconds)

            def record_end(status: RunStatus, reason: str | None) -> None:
                patient.call(
                    lambda: supervisor.flush_records(force=True) or _still_down(),
                    "recording the services' events",
                )
                patient.call(
                    lambda: store.end_run(run_id, status, self.clock.now(), reason),
                    f"recording the end of run {run_id}",
                )

            try:
                status = supervisor.run()
            except ServiceFailed as exc:
                record_end(RunStatus.FAILED, str(exc))
                self._services_reports(store, run_id)
                raise RunNotResumable(str(exc)) from None
            finally:
                lock.release()
            reason = None
            if status is RunStatus.STOPPED and supervisor.stop_signal is not None:
                reason = f"stopped by {signal.Signals(supervisor.stop_signal).name}"
            record_end(status, reason)
            if status is RunStatus.COMPLETED:
                self._services_reports(store, run_id)
            return run_id, status, supervisor.stop_signal

    def _services_reports(self, store: Store, run_id: str) -> None:
        """The daily and final reports of a services run, once it has ended; a report
        that fails is logged, never fatal."""
        from engine.report.autowrite import write_reports_after

        if not self.settings.claire_auto_reports:
            return
        try:
            write_reports_after(store.db.url, self.data_dir, run_id)
        except Exception:
            log.exception(
                "could not write the reports of run %s", run_id, extra={"event": "report_failed"}
            )

    def record_services_run(
        self, files: list[Path], days: float | None, speed: str, run_id: str
    ) -> bool:
        """Record a replay run whose services are started elsewhere (a container stack);
        False when `run_id` exists already (its services resume it)."""
        parse_speed(speed)
        with self._store() as (store, _):
            if store.get_run(run_id) is not None:
                return False
            self._create_replay_run(store, files, days, speed, None, run_id)
            return True

    def _create_replay_run(
        self,
        store: Store,
        files: list[Path],
        days: float | None,
        speed: str,
        perpetual: PerpetualFiles | None,
        run_id: str | None = None,
        preflight: dict[str, Any] | None = None,
    ) -> tuple[str, ReplayPlan]:
        strategy = self.choice.strategy_class()  # fail before anything is created
        started = self.clock.now()
        plan = plan_replay(files, days, now=started, perpetual=perpetual)
        log_rejected(plan)
        settings = self.settings
        self._warn(
            replay_warnings(
                settings.initial_capital,
                "initial_capital" in settings.model_fields_set,
                entry_fraction(settings.position_size_pct, settings.max_position_pct),
                plan,
                strategy,
            )
        )
        run_id = run_id or new_run_id(started)
        config = {
            **self._config(settings, preflight),
            "replay": {
                "files": [str(Path(f).resolve()) for f in files],
                "days": days,
                "speed": speed,
                **_perpetual_config(plan),
            },
            "quote_currency": plan.quote,
            "window": {
                "start": plan.start.isoformat(),
                "end": end.isoformat() if (end := replay_end(plan)) else None,
            },
        }
        store.create_run(
            run_id,
            config=config,
            data_source="replay: " + ", ".join(Path(f).name for f in files),
            started_at=started,
        )
        _record_rejected(store, run_id, plan)
        return run_id, plan

    def resume(
        self,
        run_id: str | None = None,
        speed: str | None = None,
        progress: ProgressSink | None = None,
    ) -> RunOutcome:
        """Continue an interrupted run, at the speed it was started with unless `speed`."""
        with self._store() as (store, database):
            run = self._resumable(store, run_id)
            live = run.config.get("live")
            if live:
                from engine.feeds.exchange import FeedSettings

                feed_settings = FeedSettings.from_env(
                    live["symbols"],
                    exchange=live["exchange"],
                    market=live["market"],
                    candle_timeframe=live.get("timeframe", "5m"),
                )
        if live:
            return asyncio.run(self._live(feed_settings, None, run, progress))
        with self._store() as (store, database):
            replay = run.config.get("replay") or {}
            plan, self.choice, settings = plan_for_run(run)
            log_rejected(plan)
            _record_rejected(store, run.run_id, plan)
            speed = speed or replay.get("speed") or "max"
            factor = parse_speed(speed)
            checkpoint = store.load_checkpoint(run.run_id)
            if run.status is not RunStatus.RUNNING:
                store.reopen_run(run.run_id)
            return self._drive(
                store, database, run.run_id, plan, settings, checkpoint, factor, speed, progress
            )

    def resumable(self, store: Store, run_id: str | None) -> RunRecord:
        """The run `resume(run_id)` would continue (the newest interrupted one by default)."""
        return self._resumable(store, run_id)

    def _resumable(self, store: Store, run_id: str | None) -> RunRecord:
        runs = store.list_runs()
        if run_id is None:
            # A run another process is running right now is not interrupted.
            candidates = [
                r
                for r in runs
                if r.status in (RunStatus.RUNNING, RunStatus.CRASHED, RunStatus.STOPPED)
                and not run_is_alive(self.data_dir, r.run_id)
            ]
            if not candidates:
                raise RunNotResumable(
                    f"no interrupted run in {self.data_dir}; start one with "
                    "`claire papertest start --replay FILE`."
                )
            run_id = max(candidates, key=lambda r: r.started_at).run_id
        run = store.get_run(run_id)
        if run is None:
            raise RunNotResumable(f"no run {run_id} in {self.data_dir}; check the run id.")
        if run.status is RunStatus.COMPLETED:
            raise RunNotResumable(f"run {run_id} already completed; start a new run instead.")
        if run.status is RunStatus.FAILED:
            why = f" ({run.end_reason})" if run.end_reason else ""
            raise RunNotResumable(
                f"run {run_id} failed{why}; a resume would repeat the error: fix its cause and "
                "start a new run."
            )
        return run

    @contextmanager
    def _session(
        self,
        store: Store,
        run_id: str,
        build: Callable[[Callable[[Event], None]], Pipeline],
        checkpoint: Checkpoint | None,
    ) -> Iterator[tuple[PersistedRun, int]]:
        """Hold the run, restore its checkpoint, and record how it ended.

        Yields the persisted run and how many market events it had already done.
        Leaving normally completes the run; Ctrl-C, SIGTERM or cancellation stops
        it after a last flush; a database outage longer than the tolerance leaves
        it interrupted (RunInterrupted); any other error fails it, and the error
        is stored as the reason. All but the last can be resumed.
        """
        lock = RunLock(self.data_dir, run_id)
        if not lock.acquire():
            raise RunNotResumable(f"run {run_id} is being run by another process right now.")
        try:
            run = PersistedRun(
                store,
                run_id,
                build,
                flush_every_events=self.flush_every_events,
                tolerance=self.tolerance,
            )
            done = 0
            if checkpoint is not None:
                restore(run.pipeline, dict(checkpoint.state))
                run.day = checkpoint.last_event_ts.date()
                try:
                    _check_against_fills(store, run_id, run.pipeline)
                except DatabaseUnavailable as exc:
                    raise _interrupted(run_id, exc) from None
                done = checkpoint.market_events
                log.info("resuming", extra={"event": "resume", "run_id": run_id, "done": done})
            try:
                yield run, done
                run.finish()
                self.tolerance.call(
                    lambda: store.end_run(run_id, RunStatus.COMPLETED, self.clock.now()),
                    f"recording the end of run {run_id}",
                )
            except (KeyboardInterrupt, asyncio.CancelledError) as exc:
                final = isinstance(exc, OperatorStop) and exc.final
                self._record_stop(run, store, run_id, _stop_reason(exc), final)
                raise
            except DatabaseUnavailable as exc:
                # Its status stays `running` with no process behind it: interrupted.
                raise _interrupted(run_id, exc) from None
            except StrategyError as exc:
                # The run cannot continue; what it did up to here is kept for the report.
                try:
                    run.flush(patient=False)
                except Exception:  # the failure to record is the strategy's, not this
                    log.exception("could not write the events before the strategy failed")
                self._record_failure(store, run_id, str(exc))
                raise
            except BaseException as exc:
                self._record_failure(store, run_id, _failure(exc))
                raise
        finally:
            lock.release()

    def _progress(
        self,
        pipeline: Pipeline,
        sink: ProgressSink | None,
        start: datetime | None,
        end: datetime | None,
        quote: str,
    ) -> ProgressFeed | None:
        if sink is None:
            return None
        return ProgressFeed(pipeline, sink, start=start, end=end, quote=quote)

    def _summary(
        self, pipeline: Pipeline, plan: ReplayPlan | None, quote: str, start: datetime | None
    ) -> RunSummary:
        return summarize(
            pipeline,
            plan,
            quote,
            strategy=self.choice.spec,
            strategy_params=json_values(self.choice.parameters()),
            market_start=start,
        )

    def _outcome(
        self,
        store: Store,
        database: str,
        run_id: str,
        summary: RunSummary,
        done: int,
        speed: str | None,
        stop_signal: int | None,
    ) -> RunOutcome:
        record = store.get_run(run_id)
        assert record is not None
        return RunOutcome(
            run_id,
            record.status,
            summary,
            self.data_dir,
            database,
            done,
            started_at=record.started_at,
            ended_at=record.ended_at,
            end_reason=record.end_reason,
            speed=speed,
            warnings=tuple(self._warnings),
            stop_signal=stop_signal,
            data_source=record.data_source,
        )

    def _checks(self, store: Store) -> dict[str, Callable[[], str | None]]:
        return {"database": _database_check(store)}

    def _record_stop(
        self, run: PersistedRun, store: Store, run_id: str, reason: str, final: bool = False
    ) -> None:
        """Ctrl-C or SIGTERM: save what we can at once (no waiting on an outage), mark it.

        `final` (a planned stop): a last snapshot with the final marks first. The signal
        may have cut a write short and broken its connection, so each step gets a second
        attempt, on a fresh connection, before it is given up. A market event still being
        delivered is never checkpointed half-done.
        """
        steps: list[tuple[str, Callable[[], object]]] = [
            (
                "record the stop",
                lambda: store.end_run(run_id, RunStatus.STOPPED, self.clock.now(), reason),
            ),
        ]
        if not run.busy:
            save = run.finish if final else (lambda: run.flush(patient=False))
            steps.insert(0, ("save the last events", save))
        for what, step in steps:
            for attempt in (1, 2):
                try:
                    step()
                    break
                except ClaireError as exc:
                    if attempt == 2:
                        log.warning(
                            "could not %s of run %s (%s); it resumes from its last checkpoint",
                            what,
                            run_id,
                            exc,
                            extra={"event": "stop_not_recorded", "run_id": run_id},
                        )

    def _record_failure(self, store: Store, run_id: str, reason: str) -> None:
        try:
            store.end_run(run_id, RunStatus.FAILED, self.clock.now(), reason)
        except ClaireError as store_exc:
            log.warning(
                "could not record the failure of run %s (%s)",
                run_id,
                store_exc,
                extra={"event": "failure_not_recorded", "run_id": run_id},
                exc_info=log.isEnabledFor(logging.DEBUG),
            )

    def _drive(
        self,
        store: Store,
        database: str,
        run_id: str,
        plan: ReplayPlan,
        settings: Settings,
        checkpoint: Checkpoint | None,
        factor: float | None,
        speed: str,
        progress: ProgressSink | None,
    ) -> RunOutcome:
        choice = self.choice
        metrics = RunMetrics(run_id)
        resumed_at = checkpoint.last_event_ts if checkpoint else None
        rejected = 0 if checkpoint else len(plan.rejected)
        session = self._ops.session(store, run_id, resumed_at=resumed_at, rejected_input=rejected)

        stop_signal = None
        feed = None
        attendant: RunAttendant | None = None
        done = checkpoint.market_events if checkpoint else 0
        with (
            StopSignals() as stop,
            session as ops,
            serving(
                metrics,
                self._checks(store),
                self.settings.claire_http_host,
                self.settings.http_port(),
            ),
        ):

            def build(observer: Callable[[Event], None]) -> Pipeline:
                return build_replay_pipeline(
                    settings,
                    plan,
                    choice.build(),
                    observers=[observer, ops.observe, metrics.observe],
                )

            try:
                with self._session(store, run_id, build, checkpoint) as (run, done):
                    ops.attach(run)
                    attendant = self._attendant(store, run)
                    between = attendant.between if attendant is not None else _nothing
                    sleep = attendant.pace(stop.sleep) if attendant is not None else stop.sleep
                    feed = self._progress(
                        run.pipeline, progress, plan.start, replay_end(plan), plan.quote
                    )
                    events = plan.events()
                    if checkpoint is not None:
                        events = _after(events, checkpoint)
                    for group in by_time(paced(events, factor, sleep=sleep)):
                        stop.check()
                        between()
                        run.process_group(group)
                        if feed is not None:
                            feed(group[-1].ts)
                    stop.check()  # a stop during the last event still stops, not completes
                    between()
            except StopRequested as exc:
                stop_signal = exc.signum
            except OperatorStop:
                pass  # recorded as stopped, with the operator's reason
            finally:
                if attendant is not None:
                    attendant.close()
        if feed is not None:
            feed.finish()
        summary = self._summary(run.pipeline, plan, plan.quote, plan.start)
        return self._outcome(store, database, run_id, summary, done, speed, stop_signal)


def _database_check(store: Store) -> Callable[[], str | None]:
    def check() -> str | None:
        store.db.fetch_one("SELECT 1 AS one", {})
        return None

    return check


def service_ports() -> dict[str, int] | None:
    """`CLAIRE_SERVICE_PORT_BASE`: the services' ports from there on, in pipeline order."""
    from engine.services.host import SERVICES

    base = os.environ.get("CLAIRE_SERVICE_PORT_BASE")
    if not base:
        return None
    if not base.isdigit() or not 1024 <= int(base) <= 65000:
        raise ConfigError(
            f"CLAIRE_SERVICE_PORT_BASE={base} is invalid: use a port from 1024 to 65000."
        )
    return {name: int(base) + n for n, name in enumerate(SERVICES)}


def plan_for_run(run: RunRecord) -> tuple[ReplayPlan, StrategyChoice, Settings]:
    """A recorded replay run's data, strategy and settings, as it was started."""
    replay = run.config.get("replay") or {}
    files = [Path(f) for f in replay.get("files", [])]
    if not files:
        raise RunNotResumable(f"run {run.run_id} has no replay files recorded.")
    settings = settings_from_snapshot(run.config.get("settings", {}))
    choice = StrategyChoice.from_config(run.config, settings.strategy)
    # Rows "in the future" are judged against the run's start, as they were then.
    plan = plan_replay(
        files,
        replay.get("days"),
        now=run.started_at,
        perpetual=_perpetual_from_config(replay, settings),
    )
    return plan, choice, settings


def _perpetual_config(plan: ReplayPlan) -> dict[str, Any]:
    """How a futures replay found its mark and funding data, for its resume."""
    perp = plan.perpetual
    if perp is None:
        return {}
    return {
        "market": "futures",
        "marks": [str(source.path.resolve()) for source in perp.marks.values()],
        "funding": [str(Path(path).resolve()) for path in perp.funding_files],
    }


def _perpetual_from_config(replay: dict[str, Any], settings: Settings) -> PerpetualFiles | None:
    if replay.get("market") != "futures":
        return None
    return PerpetualFiles(
        tuple(Path(p) for p in replay.get("marks", [])),
        tuple(Path(p) for p in replay.get("funding", [])),
        settings.funding_default_rate,
        explicit=True,
    )


def _nothing() -> None:
    return None


def _attended(
    process: Callable[[MarketData], None], attendant: RunAttendant | None
) -> Callable[[MarketData], None]:
    """A live run's per-event step, with the attendant's turn before each event."""
    if attendant is None:
        return process

    def step(event: MarketData) -> None:
        attendant.between()
        process(event)

    return step


def _stop_reason(exc: BaseException) -> str:
    if isinstance(exc, OperatorStop):
        return exc.reason
    if isinstance(exc, StopRequested):
        name = "Ctrl-C" if exc.signum == signal.SIGINT else signal.Signals(exc.signum).name
        return f"stopped by {name}; resumable"
    return "stopped; resumable"


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ClaireError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _after(events: Iterator[MarketEvent], checkpoint: Checkpoint) -> Iterator[MarketEvent]:
    """Skip exactly the market events the checkpoint has already seen."""
    skipped = 0
    for skipped, event in enumerate(events, start=1):
        if skipped == checkpoint.market_events:
            if event.event_id != checkpoint.last_event_id:
                raise RunNotResumable(
                    f"the replay data changed since the run started: event {skipped} is "
                    f"{event.event_id}, the checkpoint says {checkpoint.last_event_id}."
                )
            break
    else:
        if skipped < checkpoint.market_events:
            raise RunNotResumable(
                "the replay data is shorter than what the run already processed; "
                "restore the original files."
            )
    yield from events


@contextmanager
def open_store(settings: Settings, data_dir: Path | str | None) -> Iterator[tuple[Store, str]]:
    """The data folder's database (embedded, or CLAIRE_POSTGRES_URL), open and migrated."""
    url = settings.claire_postgres_url
    folder = resolve_data_dir(data_dir, settings)
    # The embedded server is shared by every claire process of the folder: this one
    # joins it (or starts it) and the last one to leave stops it.
    service = postgres_service(url=url.get_secret_value() if url else None, data_dir=folder)
    with service:
        store = Store.open(service.url, external=url is not None)
        try:
            yield store, redact_url(service.url)
        finally:
            store.close()


def run_is_alive(data_dir: Path, run_id: str) -> bool:
    """Whether some process holds the run's lock right now."""
    lock = RunLock(data_dir, run_id)
    if lock.acquire():
        lock.release()
        return False
    return True


def _still_down() -> bool:
    raise DatabaseUnavailable("the database does not answer yet", "unreachable")


def resolve_data_dir(data_dir: Path | str | None, settings: Settings) -> Path:
    """`--data-dir`, else CLAIRE_HOME, else the user data folder; never "" nor a file."""
    if data_dir is not None and not str(data_dir).strip():
        raise ConfigError(
            "--data-dir is empty; name a folder, or leave the option out to use CLAIRE_HOME "
            "or the default data folder."
        )
    if data_dir is not None and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir} is a file; give a folder.")
    return default_data_dir(data_dir or settings.claire_home)


__all__ = [
    "FINAL_SNAPSHOT_CAUSE",
    "Attend",
    "PaperRunner",
    "PersistedRun",
    "RunAttendant",
    "RunInterrupted",
    "RunNotResumable",
    "RunOutcome",
    "open_store",
    "resolve_data_dir",
    "run_is_alive",
]
