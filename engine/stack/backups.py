"""A stack run's backups: the same schedule as a run in one process, from a container
of their own (`cdb_steward`, `claire stack steward`, engine.run.stack_steward).

Why a container of its own: a stack run has no claire process on the operator's
machine to take its backups (the one-process steward, engine.run.steward, lives in
the run's process), and each service container does one job. Putting the duty in the
writer would tie pg_dump's CPU, memory and minutes to the container that persists
every event, and change a service for a duty that is not its own. One more small
container of the engine image needs no change to any service, gets its own resource
limit, restarts alone, and reaches PostgreSQL over the stack's network like the rest.

The schedule is engine.ops.backups.scheduler's `BackupTimer` on the wall clock:
`BACKUP_SCHEDULE` (`on`/`daily`; `off` takes none), one at start for a live run
(`CLAIRE_EXCHANGE` set), then one each `BACKUP_INTERVAL` (a replay's first after one
interval), each followed by pruning to `BACKUP_RETENTION_DAYS` (14; the newest and the
newest verified are always kept). The backups are written in the stack's data folder
(the `claire_data` volume's `backups/`, or `BACKUP_DIR`). A failed backup is logged
and tried again at the next interval; it never stops the duty. Once the run has ended
(not `running`), one last backup is taken and the duty goes idle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError
from engine.ops.backups import Backups
from engine.ops.backups.location import backup_folder
from engine.ops.backups.manifest import Backup
from engine.ops.backups.scheduler import BackupTimer
from engine.store import Store
from engine.store.runs import RunStatus

log = logging.getLogger("claire.backup")


@dataclass
class StackBackups:
    """The backup duty of one stack run; `step()` once per poll."""

    store: Store
    run_id: str
    data_dir: Path
    settings: Settings
    live: bool
    clock: Clock = field(default_factory=WallClock)
    written: list[Backup] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    ended: bool = False

    def __post_init__(self) -> None:
        self.backups = Backups(backup_folder(self.settings, self.data_dir), self.clock)
        self.timer: BackupTimer | None = None
        if self.settings.backup_schedule != "off":
            self.timer = BackupTimer(
                self.settings.backup_interval_delta(), self.clock, at_start=self.live
            )

    def step(self) -> Backup | None:
        """The backup due now, if one is (None when none is due or it failed)."""
        if self.timer is None or self.ended:
            return None
        run = self.store.get_run(self.run_id)
        if run is None:
            return None  # not recorded yet (cdb_init records it): nothing of it to keep
        if run.status is not RunStatus.RUNNING:
            self.ended = True
            return self._take("run-end")
        if not self.timer.due():
            return None
        return self._take("scheduled")

    def _take(self, reason: str) -> Backup | None:
        assert self.timer is not None
        self.timer.taken()  # a failure waits for the next interval, as in one process
        try:
            made = self.backups.create(self.store.db, reason, self.run_id)
            self.backups.prune(self.settings.backup_retention_days)
        except ClaireError as exc:
            self.failures.append(str(exc))
            log.warning("the stack's %s backup failed: %s", reason, exc)
            return None
        self.written.append(made)
        log.info("backup %s of run %s (%s)", made.manifest.name, self.run_id, reason)
        return made


__all__ = ["StackBackups"]
