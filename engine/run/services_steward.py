"""What attends a services run from its supervisor: the operator's commands and backups.

The same commands as one process (engine.run.steward), through the same
`run_commands` channel, polled a few times a second of wall time:

- `halt`, `resume` and a planned `stop` are relayed to the risk service
  (engine.services.control), which applies them at its next market time and
  records that time; the answer (done or refused, with the same result) is given
  once risk has applied it. A planned stop closes every position at market and the
  run goes on until flat (or waited too long: `PlannedStop.waited_too_long`); then
  the feed stops, the others handle what it published and stop in pipeline order,
  the final snapshot is written, a backup taken (`planned-stop`), the final report
  written and the run recorded `stopped`.
- `emergency_stop`: the services are stopped now; the run is recorded `stopped`
  and backed up (`emergency-stop`).
- `reconnect`: a live run's feed service drops its sockets, which reconnect,
  resubscribe and backfill the gap (engine.services.reconnects); answered with how
  many it dropped. A replay refuses it: it has no live feed.

Backups (BACKUP_SCHEDULE=on): as in one process, a live run's first before its first
market event, then one each BACKUP_INTERVAL of wall time, in the background; a
replay's first after one interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from engine.bus.redis import RedisBus
from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError
from engine.home.processes import note_problems
from engine.ops.backups import Backups
from engine.ops.backups.location import backup_folder
from engine.ops.backups.scheduler import BackupScheduler, BackupTimer
from engine.ops.control import Command, CommandKind, CommandStatus, ControlChannel
from engine.report.content import market_start_of
from engine.run.services_reports import DailyReports
from engine.run.steward import DRAIN_S, POLL_S, POLL_TIMEOUT_S, PlannedStop, stop_outcome
from engine.services.control import STOPPING, Closing, read_closing, read_outcomes, relay
from engine.services.final import write_final_snapshot
from engine.services.live_run import is_live
from engine.services.reconnects import queue_reconnect, read_reconnected
from engine.services.supervisor import BUS_DOWN, Ending
from engine.store import Store

log = logging.getLogger("claire.ops")

NO_LIVE_FEED: Final = "the run replays recorded data: there is no live feed to reconnect"


class ServicesSteward:
    """engine.services.supervisor's Attendant for `claire papertest start --services`."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        data_dir: Path,
        settings: Settings,
        *,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
        reports: bool = False,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.data_dir = Path(data_dir)
        self.channel = ControlChannel(store, clock or WallClock())
        self.scheduler = BackupScheduler(
            Backups(backup_folder(settings, data_dir), clock), store.db, run_id
        )
        record = store.get_run(run_id)
        self.live = record is not None and is_live(record)
        self.timer: BackupTimer | None = None
        if settings.backup_schedule != "off":
            self.timer = BackupTimer(
                settings.backup_interval_delta(), clock or WallClock(), at_start=self.live
            )
        self._monotonic = monotonic
        self._poll_s = poll_s
        self._next_poll = 0.0
        self._relayed: dict[int, Command] = {}
        self._unrelayed: list[Command] = []
        self._reconnecting: dict[int, Command] = {}
        self.stopping: PlannedStop | None = None
        self.emergency: Command | None = None
        self.closing: Closing | None = None
        self._noted = 0
        self.reports = self._daily_reports() if reports else None
        if self.live and self.timer is not None:
            self._backup("run-start")  # before the first market event, as in one process

    def _daily_reports(self) -> DailyReports | None:
        record = self.store.get_run(self.run_id)
        start = market_start_of(record) if record is not None else None
        if start is None:
            return None
        return DailyReports(self.store.db.url, self.data_dir, self.run_id, start)

    # --- between two looks at the services ------------------------------------------

    def between(self, bus: RedisBus) -> Ending | None:
        now = self._monotonic()
        if now < self._next_poll:
            return None
        self._next_poll = now + self._poll_s
        if len(self.scheduler.failures) > self._noted:
            self._noted = len(self.scheduler.failures)
            note_problems(self.data_dir, self.run_id, self.problems())
        if self.timer is not None and self.timer.due():
            self._backup("interval", bus)
        if self.reports is not None:
            self._report_days()
        ending = self._poll(bus)
        if ending is None:
            self._answer(bus)
        if ending is None and self.stopping is not None:
            ending = self._check_stop(bus, self.stopping)
        return ending

    def _report_days(self) -> None:
        assert self.reports is not None
        try:
            record = self.store.get_run(self.run_id)
            self.reports.poll(record.last_event_ts if record is not None else None)
        except Exception:  # a report never stops the run
            log.exception("could not start the daily reports of run %s", self.run_id)

    def _poll(self, bus: RedisBus) -> Ending | None:
        try:
            commands = self.channel.take(self.run_id, timeout_s=POLL_TIMEOUT_S)
        except ClaireError as exc:  # an outage: the commands wait
            log.debug("could not read commands: %s", exc)
            self._next_poll = self._monotonic() + 5.0
            return None
        commands, self._unrelayed = [*self._unrelayed, *commands], []
        for n, command in enumerate(commands):
            try:
                ending = self._apply(command, bus)
            except BUS_DOWN:  # taken but not relayed: relayed at the next poll
                self._unrelayed.extend(commands[n:])
                return None
            if ending is not None:
                for later in commands[n + 1 :]:  # taken together, never to be applied
                    if later.kind is CommandKind.EMERGENCY_STOP:  # what it asked for happens
                        self._finish(later, CommandStatus.DONE, None, note="the run stopped first")
                    else:
                        self._finish(
                            later, CommandStatus.REFUSED, None, reason="the run stopped first"
                        )
                return ending
        return None

    def _apply(self, command: Command, bus: RedisBus) -> Ending | None:
        kind = command.kind
        log.warning(
            "operator command %s from %s: %s",
            kind.value,
            command.requested_by,
            command.note,
            extra={"event": "operator_command", "run_id": self.run_id, "command": kind.value},
        )
        if kind is CommandKind.EMERGENCY_STOP:
            self.emergency = command
            return Ending(f"emergency stop by {command.requested_by}: {command.note}", drain=False)
        if self.stopping is not None or any(
            c.kind is CommandKind.STOP for c in self._relayed.values()
        ):
            self._finish(command, CommandStatus.REFUSED, None, reason=STOPPING)
        elif kind is CommandKind.RECONNECT and not self.live:
            self._finish(command, CommandStatus.REFUSED, None, reason=NO_LIVE_FEED)
        elif kind is CommandKind.RECONNECT:
            queue_reconnect(bus, command.command_id, command.note)
            self._reconnecting[command.command_id] = command
        else:
            relay(bus, command.command_id, kind.value, command.note)
            self._relayed[command.command_id] = command
        return None

    def _answer(self, bus: RedisBus) -> None:
        """Answer the commands risk has applied, with the market time it applied them at,
        and the reconnects the feed has done."""
        for command_id, sockets in read_reconnected(bus, list(self._reconnecting)).items():
            command = self._reconnecting.pop(command_id)
            self._finish(command, CommandStatus.DONE, None, sockets=sockets)
        for command_id, applied in read_outcomes(bus, list(self._relayed)).items():
            command = self._relayed.pop(command_id)
            if command.kind is CommandKind.STOP and applied.done:
                self.stopping = PlannedStop(command, applied.market_ts, self._monotonic())
                continue  # answered once the run has stopped
            status = CommandStatus.DONE if applied.done else CommandStatus.REFUSED
            self._finish(command, status, applied.market_ts, **applied.result)

    def _check_stop(self, bus: RedisBus, stop: PlannedStop) -> Ending | None:
        closing = read_closing(bus)
        if closing is None:
            return None
        self.closing = closing
        why = f"planned stop by {stop.command.requested_by}: {stop.command.note}"
        if closing.flat:
            return Ending(why, drain=True)
        if stop.waited_too_long(closing.held, closing.market_ts, self._monotonic()):
            held = ", ".join(closing.open_positions)
            return Ending(f"{why}; positions still open: {held or 'none'}", drain=True)
        return None

    def completed(self) -> None:
        """The data ended first: what is still waiting is refused."""
        for command in (*self._relayed.values(), *self._reconnecting.values()):
            self._finish(command, CommandStatus.REFUSED, None, reason="the run completed first")
        self._relayed.clear()
        self._reconnecting.clear()
        if self.stopping is not None:
            self._finish(
                self.stopping.command, CommandStatus.DONE, None, note="the run completed first"
            )
            self.stopping = None

    def stopped(self, bus: RedisBus, ending: Ending) -> None:
        """The services have stopped for the operator: a planned stop's final snapshot."""
        if not ending.drain:
            return
        self.closing = read_closing(bus) or self.closing
        try:
            write_final_snapshot(self.store, self.run_id, bus)
        except Exception:  # the stop goes on: its report uses the last snapshot written
            log.exception("could not write the final snapshot of run %s", self.run_id)

    # --- backups and the end ------------------------------------------------------------

    def _backup(self, reason: str, bus: RedisBus | None = None) -> None:
        market = self._market_time(bus)
        self.scheduler.take(reason, market)
        if self.timer is not None:
            self.timer.taken()

    def _market_time(self, bus: RedisBus | None) -> Any:
        if self.closing is not None:
            return self.closing.market_ts
        record = self.store.get_run(self.run_id)
        return record.last_event_ts if record is not None else None

    def problems(self) -> list[str]:
        return [f"{f}; see logs/claire.log" for f in self.scheduler.failures]

    def close(self) -> None:
        """After the run's end is recorded: a stop's backup, report and answer; never raises."""
        try:
            self._wrap_up()
        except Exception:
            log.exception("could not finish the run's operations", extra={"run_id": self.run_id})

    def _wrap_up(self) -> None:
        if self.reports is not None:
            self.reports.close()
        stop = self.emergency or (self.stopping.command if self.stopping else None)
        for command in (*self._relayed.values(), *self._reconnecting.values()):
            self._finish(command, CommandStatus.REFUSED, None, reason="the run stopped first")
        if self.emergency is not None and self.stopping is not None:
            self._finish(
                self.stopping.command, CommandStatus.REFUSED, None,
                reason="an emergency stop came first",
            )  # fmt: skip
        market = self._market_time(None)
        if stop is None:
            if not self.scheduler.drain(DRAIN_S):
                log.warning("background backups still running at the end of run %s", self.run_id)
            return
        result = stop_outcome(
            self.store, self.run_id, self.data_dir, self.scheduler, stop, market,
            self._open_positions(),
        )  # fmt: skip
        self._finish(stop, CommandStatus.DONE, market, **result)

    def _open_positions(self) -> list[str]:
        if self.closing is not None:
            return list(self.closing.open_positions)
        queries = self.store.queries
        last = self.store.db.fetch_one(queries["final_snapshot"], {"run_id": self.run_id})
        if last is None:
            return []
        rows = self.store.db.fetch_all(
            queries["snapshot_positions"], {"run_id": self.run_id, "snapshot_id": last["event_id"]}
        )
        return sorted({str(r["symbol"]) for r in rows})

    def _finish(self, command: Command, outcome: CommandStatus, market: Any, **result: Any) -> None:
        try:
            self.channel.finish(command.command_id, outcome, market, result)
        except ClaireError as exc:
            log.warning("could not record the outcome of command %s: %s", command.command_id, exc)


__all__ = ["NO_LIVE_FEED", "ServicesSteward"]
