"""What runs beside a paper run: its log file, notifications, health, sessions and reports.

    ops = RunOps(settings, data_dir)            # checks the notification URLs first
    with ops.session(store, run_id, ...) as s:  # logs to the data folder, session row
        build the pipeline with observers=[writer, s.observe]
        s.attach(persisted_run)                 # health monitor, reports after each flush
        ... drive the run ...
    # leaving: the final report (a completed or failed run), the session's end

- Logs: JSON lines in `DATA_DIR/logs/` (`engine.ops.logs`), secrets masked.
- Notifications: every alert the pipeline publishes, and a summary at each UTC
  day's end, go to the notifier's queue; its worker thread sends them.
- Health: `HealthMonitor` runs the wall-clock rules (memory, the engine stuck in
  one market event) in a thread; their alerts are stored through the alerts
  service and notified at once.
- Sessions: each process that runs the run is a row of `run_sessions` (uptime,
  restarts, errors, rejected input for the reports).
- Reports (`reports=True`: a live run, or a replay asked for them with `--reports`):
  when market time passes 00:00 UTC, the day that ended is written once the batch
  with its last events is committed; the final report when the run ends. A replay
  not asked for them writes none: `claire report` writes any of them on demand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.alerts.health import HealthMonitor, PipelineProbe
from engine.alerts.incidents import IncidentTrigger
from engine.alerts.notify import Message, Notifier, channels_from_settings, secret_parts
from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError
from engine.events import Alert, Event, Severity, Watermark
from engine.home.processes import note_problems
from engine.incident_kinds import IncidentType
from engine.ops.logs import ErrorCounter, run_logging
from engine.plain import iso_utc
from engine.report.autowrite import ReportWriter, missing_days
from engine.report.content import day_of, market_start_of
from engine.runtime.urls import password_of
from engine.store import RunStatus, Store

if TYPE_CHECKING:
    from engine.kernel.persisted import PersistedRun

log = logging.getLogger(__name__)

_FAR: datetime = datetime(9999, 1, 1, tzinfo=UTC)
_BEAT_S = 10.0


class RunOps:
    def __init__(self, settings: Settings, data_dir: Path, clock: Clock | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.clock = clock or WallClock()
        self.channels = channels_from_settings(settings)  # a bad URL fails before any run

    @contextmanager
    def session(
        self,
        store: Store,
        run_id: str,
        *,
        resumed_at: datetime | None = None,
        rejected_input: int = 0,
        reports: bool = True,
    ) -> Iterator[RunSession]:
        """Log, notify, watch health and (`reports`, with CLAIRE_AUTO_REPORTS) write
        reports for one process's share of a run."""
        secrets = [*secret_parts(self.channels), password_of(store.db.url) or ""]
        with run_logging(self.settings, self.data_dir, run_id, secrets) as errors:
            session = RunSession(
                self, store, run_id, errors, resumed_at, rejected_input, reports=reports
            )
            session.begin()
            try:
                yield session
            finally:
                session.end()


class RunSession:
    def __init__(
        self,
        ops: RunOps,
        store: Store,
        run_id: str,
        errors: ErrorCounter,
        resumed_at: datetime | None,
        rejected_input: int,
        *,
        reports: bool = True,
    ) -> None:
        self.ops = ops
        self.store = store
        self.run_id = run_id
        self.errors = errors
        self.rejected_input = rejected_input
        self.resumed_at = resumed_at
        self.problems: list[str] = []  # duties that failed: the run's summary says them
        started = ops.clock.now()
        self.session_id = f"{started:%Y%m%dT%H%M%S%f}-{os.getpid()}"
        self.started_at = started
        self.notifier = Notifier(
            ops.channels,
            queue_size=ops.settings.claire_notify_queue,
            retries=ops.settings.claire_notify_retries,
        )
        self.reports = (
            ReportWriter(store.db.url, ops.data_dir, run_id)
            if reports and ops.settings.claire_auto_reports
            else None
        )
        self.monitor: HealthMonitor | None = None
        mapping = ops.settings.incident_on_alert_map()
        self.incidents = IncidentTrigger(mapping, self._open_incident) if mapping else None
        self.run: PersistedRun | None = None
        self.market_start: datetime | None = None
        self._day: int | None = None
        self._next_day = _FAR
        self._pending: list[int] = []
        self._last_beat = 0.0

    # --- lifetime ---------------------------------------------------------------------

    def begin(self) -> None:
        record = self.store.get_run(self.run_id)
        self.market_start = market_start_of(record) if record else None
        self.store.db.execute(
            self.store.queries["start_session"],
            {
                "run_id": self.run_id,
                "session_id": self.session_id,
                "started_at": self.started_at,
                "resumed": self.resumed_at is not None,
                "pid": os.getpid(),
            },
        )
        self.notifier.start()
        log.info(
            "run session started",
            extra={
                "event": "session_start",
                "session_id": self.session_id,
                "resumed": self.resumed_at is not None,
                "channels": len(self.ops.channels),
            },
        )
        if self.market_start is None:
            self._next_day = _FAR
        elif self.resumed_at is not None:
            self._start_day(day_of(self.market_start, self.resumed_at))
            self._catch_up()
        else:
            self._next_day = self.market_start  # the first watermark sets the day

    def attach(self, run: PersistedRun) -> None:
        """The pipeline exists: watch its health and write reports after its flushes."""
        self.run = run
        run.on_flush = self.after_flush
        pipeline = run.pipeline
        probe = PipelineProbe(lambda: run.busy, lambda: pipeline.stats.market_events)
        self.monitor = HealthMonitor(self.ops.settings, self._health_alert, [probe]).start()

    def end(self) -> None:
        """Final report, session record, notifier: each step on its own, so a failing one
        (a database that went away) neither hides the run's own error nor skips the rest."""
        if self.monitor is not None:
            self.monitor.stop()
        if self.incidents is not None and not self.incidents.close():
            log.warning("incidents opened by alerts were still being written at the run's end")
        status = RunStatus.FAILED
        try:
            record = self.store.get_run(self.run_id)
            status = record.status if record else RunStatus.FAILED
            self._report_pending()
            if self.reports is not None and status in (RunStatus.COMPLETED, RunStatus.FAILED):
                self.reports.submit(None)
        except Exception as exc:
            _trouble(exc, "could not ask for the run's reports", "report_failed")
            self.problems.append(f"the reports of run {self.run_id} were not written: {exc}")
        if self.reports is not None:
            self.reports.close()
            if self.reports.failed:
                self.problems.append(
                    f"the reports {', '.join(self.reports.failed)} of run {self.run_id} could "
                    "not be written (see logs/claire.log); `claire report` writes them"
                )
        dead = len(self.run.pipeline.bus.dead_letters()) if self.run is not None else 0
        try:
            self.store.db.execute(
                self.store.queries["end_session"],
                {
                    "run_id": self.run_id,
                    "session_id": self.session_id,
                    "now": self.ops.clock.now(),
                    "status": status.value,
                    "errors": self.errors.errors,
                    "rejected_input": self.rejected_input + dead,
                },
            )
        except Exception as exc:
            _trouble(exc, "could not record the session's end", "session_end")
        log.info(
            "run session ended",
            extra={"event": "session_end", "session_id": self.session_id, "status": status.value},
        )
        self.notifier.close()
        self.problems.extend(self.notifier.problems())  # notifications that did not go out

    # --- the pipeline's events ---------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Every event the pipeline publishes, right after the writer buffered it."""
        kind = event.__class__
        if kind is Watermark:
            if event.ts >= self._next_day:
                self._crossed(event.ts)
        elif kind is Alert:
            self.notifier.notify_alert(event, self.run_id)  # type: ignore[arg-type]
            if self.incidents is not None:
                self.incidents.on_alert(event)  # type: ignore[arg-type]

    def _start_day(self, day: int) -> None:
        assert self.market_start is not None
        self._day = day
        first = datetime.combine(self.market_start.astimezone(UTC).date(), time(0), tzinfo=UTC)
        self._next_day = first + timedelta(days=day)

    def _crossed(self, ts: datetime) -> None:
        """Market time reached a new UTC day: the days before it are done."""
        assert self.market_start is not None
        today = day_of(self.market_start, ts)
        if self._day is not None:
            for done in range(self._day, today):
                self._pending.append(done)
                self._daily_summary(done)
        self._start_day(today)

    def _daily_summary(self, day: int) -> None:
        if not self.notifier.channels or self.run is None:
            return
        pipeline = self.run.pipeline
        p = pipeline.portfolio
        equity = p.equity()
        pnl = equity - p.day_start_equity
        assert self.market_start is not None
        date = self.market_start.astimezone(UTC).date() + timedelta(days=day - 1)
        self.notifier.submit(
            Message(
                title=f"claire daily summary: day {day} ({date.isoformat()})",
                body=(
                    f"run {self.run_id}, day {day} ({date.isoformat()}) done: "
                    f"PnL {pnl:+.8f}, equity {equity:.8f}; "
                    f"{pipeline.stats.fills} fills and {pipeline.stats.alerts} alerts so far; "
                    f"trading {pipeline.risk.state.value}"
                ),
                severity=Severity.INFO,
            )
        )

    def after_flush(self) -> None:
        """Everything buffered is committed: the days that ended can be reported."""
        self._report_pending()
        now = self.ops.clock.now()
        if (now - self.started_at).total_seconds() - self._last_beat >= _BEAT_S:
            self._last_beat = (now - self.started_at).total_seconds()
            self._beat(now)
            # `claire status` says a failing notification channel while the run goes on.
            if failing := self.notifier.problems():
                note_problems(self.ops.data_dir, self.run_id, failing)

    def _report_pending(self) -> None:
        pending, self._pending = self._pending, []
        if self.reports is None or not pending:
            return
        self._beat(self.ops.clock.now())
        for day in pending:
            try:
                self.reports.submit(day)
            except Exception:  # a report must never stop the run
                log.exception(
                    f"could not start writing the report of day {day}",
                    extra={"event": "report_failed", "report": f"day-{day:02d}"},
                )

    def _catch_up(self) -> None:
        """A resumed run writes the finished days a crash kept it from writing."""
        if self.reports is None or self._day is None:
            return
        self._pending.extend(missing_days(self.ops.data_dir, self.run_id, range(1, self._day)))

    def _beat(self, now: datetime) -> None:
        self.store.db.execute(
            self.store.queries["beat_session"],
            {
                "run_id": self.run_id,
                "session_id": self.session_id,
                "now": now,
                "errors": self.errors.errors,
                "rejected_input": self.rejected_input,
            },
        )

    # --- incidents opened by alerts ------------------------------------------------------

    def _open_incident(self, kind: IncidentType, alert: Alert) -> None:
        """In the trigger's thread: the incident's bundle, first action and report."""
        from engine.incidents.desk import IncidentDesk

        IncidentDesk(self.ops.data_dir, self.ops.settings, self.store).open_for_alert(
            kind, alert, self.run_id
        )

    # --- health ------------------------------------------------------------------------

    def _health_alert(self, alert: Alert) -> None:
        if self.run is not None:
            self.run.pipeline.alerts.outbox.put(alert)
        self.notifier.notify_alert(alert, self.run_id)

    def status(self) -> dict[str, Any]:
        """What an operator's status view or an incident bundle wants to know now."""
        return {
            "session_id": self.session_id,
            "started_at": iso_utc(self.started_at),
            "notifications": self.notifier.status(),
            "notifications_dropped": self.notifier.dropped,
            "services": [
                {"name": s.name, "healthy": s.healthy, "reason": s.reason}
                for s in (self.monitor.last if self.monitor else [])
            ],
            "alerts_firing": self.run.pipeline.alerts.book.firing() if self.run else [],
            "errors": self.errors.errors,
        }


def _trouble(exc: Exception, what: str, event: str) -> None:
    """A database that went away is an outage the run already reported: a warning, with
    the traceback only in debug logs; anything else is an error with its traceback."""
    if isinstance(exc, ClaireError):
        log.warning(
            "%s: %s", what, exc, extra={"event": event}, exc_info=log.isEnabledFor(logging.DEBUG)
        )
    else:
        log.exception(what, extra={"event": event})
