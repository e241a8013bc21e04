"""What attends a persisted run between its market events: the operator's commands,
backups, and the record of which process runs it.

Commands (engine.ops.control) are polled a few times a second of wall time, also
while a paced replay waits for its next event, and applied between two market
events:

- `halt` / `resume`: `Pipeline.halt_trading` / `resume_trading` with the note; the
  trading-state change (with the note) is written at once. A resume when trading
  is not halted is refused with the reason.
- `stop` (planned): no new entries and every position closed at market
  (`Pipeline.close_out`); the run goes on, unpaced, until it is flat (or an hour
  of market time passes without a closing fill, a day of market time in all, or two
  minutes of wall time: a thin market takes longer to leave), then stops with a
  final snapshot; then a backup and the final report in `reports/RUN_ID/` (the
  same as `claire report --final`, where a completed run writes it).
- `emergency_stop`: stop before the next market event, nothing closed; a backup.
- `reconnect` (a data-stop incident): a live run drops its feed's sockets, which
  reconnect, resubscribe and backfill the gap; a replay refuses it.

Both stops leave the run `stopped` (resumable) with the operator's reason.
Backups (BACKUP_SCHEDULE=on): one before a live run's first event, then one each
BACKUP_INTERVAL of wall time, in the background (engine.ops.backups.scheduler); a
replay's first after one interval, so an accelerated replay takes none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError
from engine.home.processes import forget_process, note_problems, record_process
from engine.kernel.persisted import PersistedRun
from engine.ops.backups import Backups
from engine.ops.backups.location import backup_folder
from engine.ops.backups.scheduler import BackupScheduler, BackupTimer
from engine.ops.control import Command, CommandKind, CommandStatus, ControlChannel
from engine.report.files import write_final_report
from engine.stopping import OperatorStop
from engine.store import Store

log = logging.getLogger("claire.ops")

POLL_S: Final = 0.2
POLL_TIMEOUT_S: Final = 0.5  # a poll never holds the run up longer than this
OUTAGE_BACKOFF_S: Final = 5.0  # after a failed poll, the next one waits this long
# A planned stop waits for its closing fills while they keep coming: it gives up after an
# hour of market time without one, a day of market time in all, or two minutes of wall time.
STOP_WAIT_MARKET: Final = timedelta(hours=1)
STOP_WAIT_MARKET_TOTAL: Final = timedelta(days=1)
STOP_WAIT_WALL_S: Final = 120.0
DRAIN_S: Final = 300.0  # how long a run waits for its background backups at the end


@dataclass
class PlannedStop:
    command: Command
    market_start: datetime
    wall_start: float
    held: Decimal = Decimal(-1)  # what was still held at the last look; -1 before the first
    market_progress: datetime | None = None  # when a closing fill last made it smaller

    def waited_too_long(self, held: Decimal, market: datetime, wall: float) -> bool:
        """Whether to give up on being flat: no closing fill for STOP_WAIT_MARKET, or
        STOP_WAIT_MARKET_TOTAL since the stop, or STOP_WAIT_WALL_S of wall time."""
        if self.market_progress is None or held < self.held:
            self.held, self.market_progress = held, market
        return (
            market - self.market_progress >= STOP_WAIT_MARKET
            or market - self.market_start >= STOP_WAIT_MARKET_TOTAL
            or wall - self.wall_start >= STOP_WAIT_WALL_S
        )


class RunSteward:
    """engine.run.attendant's RunAttendant for runs started by `claire papertest start`."""

    def __init__(
        self,
        store: Store,
        run: PersistedRun,
        data_dir: Path,
        settings: Settings,
        *,
        detached: bool = False,
        log_file: Path | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.run = run
        self.run_id = run.run_id
        self.data_dir = Path(data_dir)
        self.channel = ControlChannel(store, clock or WallClock())
        self.backups = Backups(backup_folder(settings, data_dir), clock)
        self.scheduler = BackupScheduler(self.backups, store.db, run.run_id)
        self._monotonic = monotonic
        self._poll_s = poll_s
        self._next_poll = 0.0
        self._stopping: PlannedStop | None = None
        self._emergency: Command | None = None
        self._closed = False
        self._problems: list[str] = []
        self._noted = 0  # backup failures kept for `claire status` so far
        record_process(self.data_dir, self.run_id, detached=detached, log=log_file, clock=clock)
        self.timer: BackupTimer | None = None
        if settings.backup_schedule != "off":
            live = run.reconnect is not None
            self.timer = BackupTimer(
                settings.backup_interval_delta(), clock or WallClock(), at_start=live
            )
            if live:
                self._backup("run-start")

    @classmethod
    def factory(
        cls, data_dir: Path, settings: Settings, **kwargs: Any
    ) -> Callable[[Store, PersistedRun], RunSteward]:
        """What `PaperRunner(attend=...)` takes."""
        return lambda store, run: cls(store, run, data_dir, settings, **kwargs)

    # --- between market events -----------------------------------------------------

    def between(self) -> None:
        if len(self.scheduler.failures) > self._noted:  # said in `claire status` at once
            self._noted = len(self.scheduler.failures)
            note_problems(self.data_dir, self.run_id, self.problems())
        if self._stopping is not None:
            self._check_stop(self._stopping)
        self._maybe_poll()

    def _maybe_poll(self) -> None:
        now = self._monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + self._poll_s
        if self.timer is not None and self.timer.due():
            self._save()  # everything processed so far is in the backup
            self._backup("interval")
        self._poll()

    def pace(self, sleep: Callable[[float], None]) -> Callable[[float], None]:
        def wait(seconds: float) -> None:
            end = self._monotonic() + seconds
            while self._stopping is None:  # a planned stop closes out unpaced
                left = end - self._monotonic()
                if left <= 0:
                    return
                step = min(left, self._poll_s)
                before = self._monotonic()
                sleep(step)
                if self._monotonic() - before < step:
                    return  # the wait was cut short: a signal asked the run to stop
                self._maybe_poll()

        return wait

    def _poll(self) -> None:
        try:
            commands = self.channel.take(self.run_id, timeout_s=POLL_TIMEOUT_S)
        except ClaireError as exc:  # an outage: the writer rides it out, commands can wait
            log.debug("could not read commands: %s", exc)
            self._next_poll = self._monotonic() + OUTAGE_BACKOFF_S
            return
        for n, command in enumerate(commands):
            try:
                self._apply(command)
            except OperatorStop:
                for later in commands[n + 1 :]:  # taken together, never to be applied
                    if later.kind is CommandKind.EMERGENCY_STOP:  # what it asked for happens
                        self._finish(later, CommandStatus.DONE, note="the run stopped first")
                    else:
                        self._finish(later, CommandStatus.REFUSED, reason="the run stopped first")
                raise

    def _apply(self, command: Command) -> None:
        pipeline = self.run.pipeline
        kind = command.kind
        note = command.note
        log.warning(
            "operator command %s from %s: %s",
            kind.value,
            command.requested_by,
            note,
            extra={"event": "operator_command", "run_id": self.run_id, "command": kind.value},
        )
        if self._stopping is not None and kind is not CommandKind.EMERGENCY_STOP:
            self._finish(command, CommandStatus.REFUSED, reason="the run is stopping (planned)")
            return
        if kind is CommandKind.RESUME:
            state = pipeline.risk.state.value
            if not pipeline.resume_trading(note):
                self._finish(
                    command,
                    CommandStatus.REFUSED,
                    reason=f"trading is {state}, not halted: there is nothing to resume",
                )
                return
            self._save()
            self._finish(command, CommandStatus.DONE, trading_state=pipeline.risk.state.value)
        elif kind is CommandKind.HALT:
            if not pipeline.halt_trading(note):
                self._finish(command, CommandStatus.REFUSED, reason="trading is halted already")
                return
            self._save()
            self._finish(command, CommandStatus.DONE, trading_state=pipeline.risk.state.value)
        elif kind is CommandKind.RECONNECT:
            if self.run.reconnect is None:
                self._finish(
                    command,
                    CommandStatus.REFUSED,
                    reason="the run replays recorded data: there is no live feed to reconnect",
                )
                return
            sockets = self.run.reconnect(f"operator: {note}")
            self._finish(command, CommandStatus.DONE, sockets=sockets)
        elif kind is CommandKind.STOP:
            pipeline.close_out(f"planned stop: {note}")
            self._save()
            self._stopping = PlannedStop(command, pipeline.clock.now(), self._monotonic())
            self._check_stop(self._stopping)
        else:
            self._emergency = command
            raise OperatorStop(f"emergency stop by {command.requested_by}: {note}")

    def _check_stop(self, stop: PlannedStop) -> None:
        pipeline = self.run.pipeline
        why = f"planned stop by {stop.command.requested_by}: {stop.command.note}"
        if pipeline.is_flat():
            raise OperatorStop(why, final=True)
        left = sum((abs(p.qty) for p in pipeline.portfolio.positions.values()), Decimal(0))
        if stop.waited_too_long(left, pipeline.clock.now(), self._monotonic()):
            held = ", ".join(sorted(s for s, p in pipeline.portfolio.positions.items() if p.qty))
            raise OperatorStop(f"{why}; positions still open: {held or 'none'}", final=True)

    def _save(self) -> None:
        """The effect of a command (a trading-state change) is stored before it is answered."""
        self.run.flush()

    def _finish(self, command: Command, outcome: CommandStatus, **result: Any) -> None:
        try:
            self.channel.finish(command.command_id, outcome, self.run.pipeline.clock.now(), result)
        except ClaireError as exc:
            log.warning("could not record the outcome of command %s: %s", command.command_id, exc)

    # --- backups ---------------------------------------------------------------------

    def _backup(self, reason: str) -> None:
        """Snapshot now (the run as written so far), dump in the background."""
        pipeline = self.run.pipeline
        market = pipeline.clock.now() if pipeline.stats.market_events else None
        self.scheduler.take(reason, market)
        if self.timer is not None:
            self.timer.taken()

    # --- the end -----------------------------------------------------------------------

    def close(self) -> None:
        """After the run's end is recorded: the stop's backup and report; never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            self._wrap_up()
        except Exception:
            log.exception("could not finish the run's operations", extra={"run_id": self.run_id})
        finally:
            forget_process(self.data_dir, self.run_id)

    def problems(self) -> list[str]:
        """Failed backups (see logs/claire.log) and a stop's report that was not written."""
        found = [f"{f}; see logs/claire.log" for f in self.scheduler.failures]
        return found + self._problems

    def _wrap_up(self) -> None:
        planned = self._stopping.command if self._stopping is not None else None
        stop = self._emergency or planned
        if self._emergency is not None and planned is not None:
            self._finish(planned, CommandStatus.REFUSED, reason="an emergency stop came first")
        market = self.run.pipeline.clock.now() if self.run.pipeline.stats.market_events else None
        if stop is None:
            if not self.scheduler.drain(DRAIN_S):
                log.warning("background backups still running at the end of run %s", self.run_id)
            return
        held = sorted(s for s, p in self.run.pipeline.portfolio.positions.items() if p.qty)
        result = stop_outcome(
            self.store, self.run_id, self.data_dir, self.scheduler, stop, market, held
        )
        if "report_error" in result:
            self._problems.append(
                f"the final report of run {self.run_id} failed: {result['report_error']}"
            )
        self._finish(stop, CommandStatus.DONE, **result)


def stop_outcome(
    store: Store,
    run_id: str,
    data_dir: Path,
    scheduler: BackupScheduler,
    stop: Command,
    market: datetime | None,
    open_positions: list[str],
) -> dict[str, Any]:
    """What a stop's answer says, once the run's end is recorded: how it ended, what it
    still held, the stop's backup and (a planned stop's) final report."""
    record = store.get_run(run_id)
    result: dict[str, Any] = {
        "status": record.status.value if record else None,
        "end_reason": record.end_reason if record else None,
        "open_positions": open_positions,
    }
    reason = "planned-stop" if stop.kind is CommandKind.STOP else "emergency-stop"
    backup = scheduler.take_now(reason, market)
    result["backup"] = str(backup.dump) if backup else None
    if scheduler.failures:
        result["backup_failures"] = list(scheduler.failures)
    if stop.kind is CommandKind.STOP:
        try:
            result["report"] = str(write_final_report(store, run_id, data_dir))
        except ClaireError as exc:
            result["report"] = None
            result["report_error"] = str(exc)
    return result


__all__ = ["PlannedStop", "RunSteward", "stop_outcome"]
