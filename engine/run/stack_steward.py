"""A stack run's steward: the operator's commands, backups and reports, from inside the stack.

A run as services under `claire papertest start --services` is attended by its
supervisor's steward (engine.run.services_steward). A stack has no supervisor: its
services are containers, and the operator's machine may not even be the one that
runs them. `cdb_steward` (`claire stack steward`) attends the stack's run instead,
with the same steward and the same `run_commands` channel:

- `halt`, `resume` and a planned `stop` go to the risk service, `reconnect` to the
  feed, and each is answered in `run_commands` as under a supervisor.
- A planned stop, once risk has closed out, stops the feed (engine.services.run_stop),
  waits for the others to handle what it published, writes the final snapshot, stops
  every service, records the run `stopped`, takes the `planned-stop` backup and writes
  the final report. An emergency stop stops every service at once, records the run
  `stopped` and takes the `emergency-stop` backup. The services stay up, idle: a
  container that exited would be started again.
- A live run ends when its feed has reached the planned end (`CLAIRE_LIVE_DAYS`) and
  every service has handled what it published: the run is recorded `completed`, as a
  supervisor records it, its missing daily reports and its final report are written
  and its last backup taken; the services stay up, idle. (A replay is recorded
  completed by `claire stack wait`.)
- Backups on the operator's clock (engine.stack.backups: one at a live run's start,
  one each `BACKUP_INTERVAL`, pruned to the retention, one when the run ends), and a
  live run's daily reports as each market day ends.
- It beats in the stack's database (`run_stewards`) while it attends the run, so an
  operator command from any machine is sent only while something will take it.

A steward restarted (its container) takes the commands still pending; a command it
had relayed before it died is answered by risk's recorded outcome, which it reads
again (engine.services.control keeps outcomes by command id).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from engine.bus.redis import RedisBus
from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError
from engine.ops.attended import STEWARD_ALIVE_S
from engine.run.services_steward import ServicesSteward
from engine.services.host import drained, finished
from engine.services.run_stop import feed_stopped, request_stop
from engine.services.supervisor import BUS_DOWN, Ending
from engine.stack.backups import StackBackups
from engine.store import RunStatus, Store
from engine.store.retry import OutageTolerance

log = logging.getLogger("claire.steward")

POLL_S: Final = 0.25  # between two looks at the commands and the run
ALIVE_FILE: Final = "/tmp/claire-steward.alive"  # noqa: S108 - touched for the health check
BEAT_S: Final = STEWARD_ALIVE_S / 6  # between two beats in run_stewards
BACKUP_LOOK_S: Final = 10.0  # between two looks at the backup schedule
DRAIN_S: Final = 120.0  # for the services to handle what the feed published


class StackSteward:
    """Attends one stack run; `step()` once per poll, `close()` when the container stops."""

    def __init__(
        self,
        store: Store,
        bus: RedisBus,
        run_id: str,
        data_dir: Path,
        settings: Settings,
        *,
        live: bool,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        drain_s: float = DRAIN_S,
        name: str | None = None,
    ) -> None:
        self.store, self.bus, self.run_id = store, bus, run_id
        self.data_dir, self.settings, self.live = Path(data_dir), settings, live
        self.clock = clock or WallClock()
        self.backups = StackBackups(store, run_id, self.data_dir, settings, live, self.clock)
        self.name = name or f"stack-steward@{socket.gethostname()}"
        self.commands: ServicesSteward | None = None
        self.ended = False
        self._monotonic, self._sleep, self._drain_s = monotonic, sleep, drain_s
        self._next_beat = 0.0
        self._next_backup = 0.0
        # Touched after each look and all through a long stop or backup, for the
        # container's health check (set by `attend`).
        self.alive: Path | None = None

    def step(self) -> None:
        """One look: the backups when due, the run's state, the operator's commands."""
        now = self._monotonic()
        if now >= self._next_backup:
            self._next_backup = now + BACKUP_LOOK_S
            # A dump can take minutes: the steward stays alive for the health check and,
            # once it attends a running run, for the operator's commands.
            with self._beating(db=self._next_beat > 0 and not self.ended):
                self.backups.step()
        if self.ended:
            return
        run = self.store.get_run(self.run_id)
        if run is None:
            return  # cdb_init records it first
        if run.status is not RunStatus.RUNNING:
            self._ended_elsewhere()
            return
        if now >= self._next_beat:
            self._next_beat = now + BEAT_S
            self.store.beat_steward(self.run_id, self.name)
        if self.commands is None:
            self.commands = self._steward()
        try:
            complete = self.live and finished(self.bus)  # its planned end
            ending = None if complete else self.commands.between(self.bus)
        except BUS_DOWN as exc:  # the stack's Redis restarts: the next look goes on
            log.warning("the stack's Redis does not answer: %s", exc)
            return
        if complete:
            self._complete()
        elif ending is not None:
            self._stop(ending)

    def _steward(self) -> ServicesSteward:
        # The scheduled backups are the stack's own duty (StackBackups); the steward
        # takes only a stop's backup.
        quiet = self.settings.model_copy(update={"backup_schedule": "off"})
        return ServicesSteward(
            self.store, self.run_id, self.data_dir, quiet, clock=self.clock,
            monotonic=self._monotonic, poll_s=0.0, reports=self.live,
        )  # fmt: skip

    def _stop(self, ending: Ending) -> None:
        """What the supervisor does for an operator's stop, told through Redis; the
        steward beats all through it (a drain, a dump and a report can take minutes)."""
        with self._beating():
            self._carry_out(ending)
        self._leave()  # after the answer: the operator waits while the steward beats

    @contextmanager
    def _beating(self, db: bool = True) -> Iterator[None]:
        """While this lasts, a thread says every BEAT_S that the steward is alive: in
        the health file, and (`db`) in the run's database for the operator's commands."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(BEAT_S):
                if self.alive is not None:
                    with contextlib.suppress(OSError):
                        self.alive.touch()
                if not db:
                    continue
                try:
                    self.store.beat_steward(self.run_id, self.name)
                except ClaireError as exc:
                    log.warning("could not beat for run %s: %s", self.run_id, exc)

        beating = threading.Thread(target=beat, name="steward-beat", daemon=True)
        beating.start()
        try:
            yield
        finally:
            done.set()
            beating.join(BEAT_S * 2)

    def _carry_out(self, ending: Ending) -> None:
        assert self.commands is not None
        log.warning("stopping run %s: %s", self.run_id, ending.reason)
        if ending.drain:
            request_stop(self.bus, "feed")
            deadline = self._monotonic() + self._drain_s
            while not (feed_stopped(self.bus) and drained(self.bus)):
                if self._monotonic() >= deadline:
                    log.warning("the services had not handled everything in %g s", self._drain_s)
                    break
                self._sleep(0.1)
            self.commands.stopped(self.bus, ending)
        request_stop(self.bus, "all")
        patient = OutageTolerance(seconds=self.settings.db_outage_tolerance_seconds)
        patient.call(
            lambda: self.store.end_run(
                self.run_id, RunStatus.STOPPED, self.clock.now(), ending.reason
            ),
            f"recording the end of run {self.run_id}",
        )
        self.ended = True
        self.backups.ended = True  # the stop's own backup is the run's last
        self.commands.close()  # the stop's backup, final report and answer

    def _complete(self) -> None:
        """A live run's feed reached the planned end and every service has handled what
        it published: the run is recorded completed, as a supervisor records it, with its
        reports; its last backup follows at the next look (StackBackups)."""
        assert self.commands is not None
        log.warning("run %s reached its planned end", self.run_id)
        with self._beating():
            request_stop(self.bus, "all")  # the services stay up, idle
            self.commands.completed()  # what waits is refused: the run completed first
            patient = OutageTolerance(seconds=self.settings.db_outage_tolerance_seconds)
            patient.call(
                lambda: self.store.end_run(self.run_id, RunStatus.COMPLETED, self.clock.now()),
                f"recording the end of run {self.run_id}",
            )
            self.ended = True
            self.commands.close()  # the daily reports still being written
            if self.settings.claire_auto_reports:
                from engine.report.autowrite import write_reports_after

                try:
                    write_reports_after(self.store.db.url, self.data_dir, self.run_id)
                except Exception:  # a report never fails the run; `claire report` writes it
                    log.exception("could not write the reports of run %s", self.run_id)
        self._leave()

    def _ended_elsewhere(self) -> None:
        """Completed (`claire stack wait`), failed by a service, or stopped by hand:
        what waits is refused, and the steward goes idle."""
        self.ended = True
        if self.commands is not None:
            self.commands.completed()
            self.commands.close()
        self._leave()

    def _leave(self) -> None:
        try:
            self.store.leave_steward(self.run_id, self.name)
        except ClaireError as exc:
            log.warning("could not record that the steward left run %s: %s", self.run_id, exc)

    def close(self) -> None:
        """The container stops: the run's steward is gone until it starts again."""
        if self.ended:
            return  # it left when the run ended
        self._leave()
        if self.commands is not None and self.commands.reports is not None:
            self.commands.reports.close()


def attend(
    steward: StackSteward,
    wait: Callable[[float], bool],
    poll_s: float = POLL_S,
    alive: Path | None = None,
) -> None:
    """Step the steward every `poll_s` until `wait(poll_s)` says to stop (returns True);
    `alive` is touched after each look, for the container's health check. A database
    or bus outage is logged and looked at again."""
    steward.alive = alive
    try:
        while True:
            try:
                steward.step()
            except (ClaireError, *BUS_DOWN) as exc:
                log.warning("the steward could not look at run %s: %s", steward.run_id, exc)
            if alive is not None:
                alive.touch()
            if wait(poll_s):
                return
    finally:
        steward.close()


def attend_stack_run(
    run_id: str,
    data_dir: str | Path | None,
    wait: Callable[[float], bool],
    poll_s: float = POLL_S,
    *,
    say: Callable[[str], None] = log.info,
) -> None:
    """`claire stack steward`: attend the run in the stack's PostgreSQL and Redis (the
    URLs in the environment) until `wait` says to stop."""
    import os

    from engine.config import load_settings
    from engine.home.database import open_store
    from engine.home.folder import resolve_data_dir
    from engine.runtime.redis import redis_service
    from engine.services.host import stream_prefix

    settings = load_settings()
    folder = resolve_data_dir(data_dir, settings)
    live = bool(os.environ.get("CLAIRE_EXCHANGE", "").strip())
    server = redis_service(folder)
    bus = RedisBus(server.start(), prefix=stream_prefix(run_id))
    try:
        with open_store(settings, folder) as (store, _):
            steward = StackSteward(store, bus, run_id, folder, settings, live=live)
            say(
                f"steward of run {run_id}: operator commands; backups {settings.backup_schedule}, "
                f"every {settings.backup_interval}, kept {settings.backup_retention_days} days"
            )
            attend(steward, wait, poll_s, alive=Path(ALIVE_FILE))
    finally:
        bus.close()
        server.stop()


__all__ = ["StackSteward", "attend", "attend_stack_run"]
