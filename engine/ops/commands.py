"""The operator's side of the control channel: stop a run, halt or resume its trading.

Each command goes to the run that is active in the data folder (or the one named)
and waits, bounded, for the run to answer. A run that is not running gets no
command: the refusal says why. An emergency stop the run does not take within
its grace period (a run stuck outside its event loop) is delivered as SIGTERM to
the run's process instead, which stops it resumably (within a few seconds even
when its strategy hangs: engine.run.watchdog), and the backup is taken here. A
run whose process is still alive SIGTERM_WAIT_S later did not stop: the command is
refused with that, and the operator is told how to end it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from engine.home.processes import read_process, same_process
from engine.ops.attended import STEWARD_ALIVE_S, run_attended
from engine.ops.backups import Backups
from engine.ops.control import (
    Command,
    CommandError,
    CommandKind,
    CommandStatus,
    ControlChannel,
    operator_name,
)
from engine.report.access import RunNotFound
from engine.store import RunRecord, RunStatus, Store

TAKE_TIMEOUT_S: Final = 30.0  # for the run to take a command (it polls a few times a second)
STOP_TIMEOUT_S: Final = 300.0  # for a planned stop: close out, backup, final report
EMERGENCY_GRACE_S: Final = 10.0
SIGTERM_WAIT_S: Final = 20.0  # the watchdog ends a run within seconds of SIGTERM


def target_run(store: Store, data_dir: Path, run_id: str | None) -> RunRecord:
    """The run a command goes to: the one named, else the only active one."""
    if run_id is not None:
        record = store.get_run(run_id)
        if record is None:
            raise RunNotFound(
                f"no run {run_id} in {data_dir}; `claire papertest status` lists the runs there."
            )
        if record.status is not RunStatus.RUNNING:
            raise CommandError(
                f"run {run_id} is not running ({record.status.value}); there is nothing to send "
                "it a command. A stopped run continues with `claire papertest start --resume`."
            )
        if not run_attended(store, data_dir, run_id):
            raise CommandError(_not_here(store, run_id))
        return record
    active = [
        r
        for r in store.list_runs()
        if r.status is RunStatus.RUNNING and run_attended(store, data_dir, r.run_id)
    ]
    if not active:
        elsewhere = [r for r in store.list_runs() if r.status is RunStatus.RUNNING]
        if store.db.external and elsewhere:
            if len(elsewhere) == 1:
                raise CommandError(_not_here(store, elsewhere[0].run_id))
            names = ", ".join(r.run_id for r in elsewhere)
            raise CommandError(
                f"no run is active on this machine, and several are recorded as running in "
                f"the database ({names}); name one with --run to see why it takes no command."
            )
        raise CommandError(f"no run is active in {data_dir}; `claire status` shows the newest one.")
    if len(active) > 1:
        names = ", ".join(r.run_id for r in active)
        raise CommandError(f"several runs are active ({names}); name one with --run.")
    record = store.get_run(active[0].run_id)
    assert record is not None
    return record


def _not_here(store: Store, run_id: str) -> str:
    """Why a run recorded as running takes no command from here, and what to do."""
    if store.db.external:  # a stack's database, or a server named by CLAIRE_POSTGRES_URL
        return (
            f"run {run_id} is recorded as running, but nothing takes its commands: no process "
            f"on this machine runs it and no stack steward has answered for it in the last "
            f"{STEWARD_ALIVE_S:g} s; a stack's run is attended by its cdb_steward container "
            "(`claire stack up` starts it again, `claire stack logs cdb_steward` says why it "
            "stopped), and a run that was interrupted continues with `claire papertest start "
            f"--resume --run {run_id}`."
        )
    return (
        f"run {run_id} is interrupted: no process runs it; continue it with "
        f"`claire papertest start --resume --run {run_id}` first."
    )


class Operator:
    """Sends commands to the runs of one data folder and waits for their answers."""

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        *,
        requested_by: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self.requested_by = requested_by or operator_name()
        self.channel = ControlChannel(store, sleep=sleep, monotonic=monotonic)
        self._monotonic = monotonic
        self._sleep = sleep

    def _alive(self, run_id: str) -> Callable[[], bool]:
        """The run is held, or its process is still finishing (a stop's backup and report)."""

        def alive() -> bool:
            if run_attended(self.store, self.data_dir, run_id):
                return True
            process = read_process(self.data_dir, run_id)
            return process is not None and same_process(process)

        return alive

    def command(
        self,
        kind: CommandKind,
        note: str,
        run_id: str | None = None,
        timeout_s: float = TAKE_TIMEOUT_S,
    ) -> Command:
        """Halt or resume: send, and wait for the run's answer (done or refused)."""
        run = target_run(self.store, self.data_dir, run_id)
        command_id = self.channel.send(run.run_id, kind, note, self.requested_by)
        alive = self._alive(run.run_id)
        answer = self.channel.wait(command_id, timeout_s, still_alive=alive)
        return self._settled(answer, timeout_s, alive)

    def stop(
        self,
        reason: str,
        run_id: str | None = None,
        *,
        emergency: bool = False,
        timeout_s: float = STOP_TIMEOUT_S,
        grace_s: float = EMERGENCY_GRACE_S,
    ) -> Command:
        run = target_run(self.store, self.data_dir, run_id)
        kind = CommandKind.EMERGENCY_STOP if emergency else CommandKind.STOP
        command_id = self.channel.send(run.run_id, kind, reason, self.requested_by)
        alive = self._alive(run.run_id)
        if emergency:
            taken = self.channel.wait(command_id, grace_s, until_taken=True, still_alive=alive)
            if taken.status is CommandStatus.PENDING and self.channel.take_one(command_id):
                return self._terminate(run.run_id, taken)
        answer = self.channel.wait(command_id, timeout_s, still_alive=alive)
        return self._settled(answer, timeout_s, alive)

    def _settled(self, answer: Command, timeout_s: float, alive: Callable[[], bool]) -> Command:
        """The run's answer, or one sentence on why there is none."""
        if answer.status is CommandStatus.PENDING:
            ended = not alive()
            why = "the run ended first" if ended else f"not taken within {timeout_s:g} s"
            if self.channel.expire(answer.command_id, why):
                if ended:
                    raise CommandError(
                        f"run {answer.run_id} ended before it took the command; `claire status` "
                        "shows how it ended."
                    )
                raise CommandError(
                    f"run {answer.run_id} did not take the command within {timeout_s:g} s (it "
                    "looks between market events); `claire status` shows whether it is stuck, "
                    "and `claire papertest stop --emergency` stops it anyway."
                )
            # The run took it at the last moment: give it the time to answer.
            answer = self.channel.wait(answer.command_id, timeout_s, still_alive=alive)
        if answer.status is CommandStatus.TAKEN and not alive():
            raise CommandError(
                f"run {answer.run_id} took the command, then ended before it answered; "
                "`claire status` shows how it ended."
            )
        if answer.status is CommandStatus.TAKEN:
            raise CommandError(
                f"run {answer.run_id} took the command but had not finished it after "
                f"{timeout_s:g} s; `claire status` shows how it goes."
            )
        return answer

    def _terminate(self, run_id: str, command: Command) -> Command:
        """The run did not take its emergency stop: SIGTERM (a resumable stop), then a backup."""
        process = read_process(self.data_dir, run_id)
        if process is None or not same_process(process):
            self.channel.finish(
                command.command_id,
                CommandStatus.REFUSED,
                None,
                {"reason": "the run's process is unknown"},
            )
            raise CommandError(
                f"run {run_id} did not take the emergency stop and its process is unknown; "
                "stop it by hand (kill the claire process), then resume or abandon it."
            )
        os.kill(process.pid, signal.SIGTERM)
        deadline = self._monotonic() + SIGTERM_WAIT_S
        alive = self._alive(run_id)
        while alive() and self._monotonic() < deadline:
            self._sleep(0.1)
        if alive():
            why = f"its process {process.pid} was still running {SIGTERM_WAIT_S:g} s after SIGTERM"
            self.channel.finish(command.command_id, CommandStatus.REFUSED, None, {"reason": why})
            raise CommandError(
                f"run {run_id} did not stop: {why}; end it with `kill -9 {process.pid}`, then "
                f"resume it with `claire papertest start --resume --run {run_id}`."
            )
        from engine.config import load_settings
        from engine.ops.backups.location import backup_folder

        backups = Backups(backup_folder(load_settings(), self.data_dir))
        backup = backups.create(self.store.db, "emergency-stop", run_id)
        record = self.store.get_run(run_id)
        self.channel.finish(
            command.command_id,
            CommandStatus.DONE,
            record.last_event_ts if record else None,
            {
                "via": "SIGTERM",
                "pid": process.pid,
                "status": record.status.value if record else None,
                "end_reason": record.end_reason if record else None,
                "backup": str(backup.dump),
            },
        )
        return self.channel.get(command.command_id) or command


__all__ = ["Operator", "target_run"]
