"""A run attended by its steward: operator commands between market events, stops, backups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.clock import EventClock
from engine.config import load_settings
from engine.home.database import open_store
from engine.kernel.progress import ProgressView
from engine.ops.backups import BackupFolder
from engine.ops.control import CommandKind, CommandStatus, ControlChannel
from engine.run.runner import PaperRunner
from engine.run.steward import RunSteward
from engine.store import RunStatus, Store
from tests.cli.support import ok

pytestmark = pytest.mark.integration


def attended(home: Path, **settings: str) -> PaperRunner:
    chosen = load_settings(initial_capital="10", **settings)
    return PaperRunner(chosen, home, attend=RunSteward.factory(home, chosen, poll_s=0.0))


def latest_run(store: Store) -> str:
    return store.list_runs()[0].run_id


def operator(
    store: Store, act: Callable[[ProgressView, str], None]
) -> Callable[[ProgressView], None]:
    """A progress sink that acts as the operator, from the run's own thread between events."""

    def sink(view: ProgressView) -> None:
        act(view, latest_run(store))

    return sink


def test_halt_and_resume_arrive_between_events_and_keep_their_notes(
    four_symbols: list[Path], claire_home: Path
) -> None:
    sent: dict[str, int] = {}
    with open_store(load_settings(), claire_home) as (store, _):
        channel = ControlChannel(store)

        def act(view: ProgressView, run_id: str) -> None:
            if "halt" not in sent:
                sent["halt"] = channel.send(run_id, CommandKind.HALT, "a spike to check", "ops@a")
            elif view.trading_state == "halted" and "resume" not in sent:
                sent["resume"] = channel.send(run_id, CommandKind.RESUME, "spike was real", "ops@b")
            elif "resume" in sent and view.trading_state == "active" and "again" not in sent:
                sent["again"] = channel.send(run_id, CommandKind.RESUME, "once more", "ops@b")

        outcome = attended(claire_home).start(
            four_symbols, 4, "200000x", progress=operator(store, act)
        )
        assert outcome.status is RunStatus.COMPLETED
        answers = {name: channel.get(command_id) for name, command_id in sent.items()}
        changes = store.db.fetch_all(
            "SELECT ts, reason, detail FROM risk_events WHERE run_id = %s AND kind = "
            "'state_change' ORDER BY ts, event_id",
            (outcome.run_id,),
        )
    halt, resume, again = answers["halt"], answers["resume"], answers["again"]
    assert halt and halt.status is CommandStatus.DONE and halt.result["trading_state"] == "halted"
    assert resume and resume.status is CommandStatus.DONE
    assert resume.result["trading_state"] == "active"
    assert again and again.status is CommandStatus.REFUSED
    assert again.result["reason"] == "trading is active, not halted: there is nothing to resume"
    by_reason = {c["reason"]: c for c in changes}
    assert by_reason["operator_halt"]["detail"]["note"] == "a spike to check"
    assert by_reason["operator_resume"]["detail"]["note"] == "spike was real"
    assert by_reason["operator_halt"]["ts"] == halt.market_ts  # applied at that market time
    assert by_reason["operator_resume"]["ts"] == resume.market_ts
    assert halt.market_ts < resume.market_ts  # type: ignore[operator]


def _stop_when_holding(
    store: Store, kind: CommandKind, note: str, sent: list[int]
) -> Callable[[ProgressView], None]:
    channel = ControlChannel(store)

    def act(view: ProgressView, run_id: str) -> None:
        if not sent and view.open_positions:
            sent.append(channel.send(run_id, kind, note, "ops@host"))

    return operator(store, act)


def test_a_planned_stop_closes_out_then_backs_up_and_writes_the_final_report(
    four_symbols: list[Path], claire_home: Path
) -> None:
    sent: list[int] = []
    with open_store(load_settings(), claire_home) as (store, _):
        sink = _stop_when_holding(store, CommandKind.STOP, "end of the test", sent)
        outcome = attended(claire_home, backup_schedule="off").start(
            four_symbols, 7, "200000x", progress=sink
        )
        answer = ControlChannel(store).get(sent[0])
    assert outcome.status is RunStatus.STOPPED and outcome.stop_signal is None
    assert outcome.end_reason == "planned stop by ops@host: end of the test"
    assert outcome.summary.open_positions == []  # flat
    assert outcome.summary.trading_state == "halted"
    assert answer is not None and answer.status is CommandStatus.DONE
    result = dict(answer.result)
    assert result["open_positions"] == [] and result["status"] == "stopped"
    report = Path(result["report"])
    # The same final report `claire report --final` gives, where a completed run's goes.
    assert report == claire_home / "reports" / outcome.run_id / "final.md"
    given = ok("report", "--final", "--run", outcome.run_id, "--data-dir", claire_home).stdout

    def body(text: str) -> list[str]:  # all but the times of writing
        lines = text.strip().splitlines()
        return [line for line in lines if " by claire " not in line and "| uptime |" not in line]

    assert outcome.run_id in report.read_text() and body(report.read_text()) == body(given)
    assert {p.name for p in report.parent.iterdir()} == {"final.md", "final.html", "final.json"}
    [backup] = BackupFolder(claire_home / "backups").backups()  # the stop's, none scheduled
    assert str(backup.dump) == result["backup"] and backup.manifest.reason == "planned-stop"
    assert backup.manifest.runs[0]["status"] == "stopped"


def test_an_emergency_stop_closes_nothing_backs_up_and_resumes(
    four_symbols: list[Path], claire_home: Path
) -> None:
    sent: list[int] = []
    with open_store(load_settings(), claire_home) as (store, _):
        sink = _stop_when_holding(store, CommandKind.EMERGENCY_STOP, "exchange down", sent)
        stopped = attended(claire_home, backup_schedule="off").start(
            four_symbols, 7, "200000x", progress=sink
        )
        answer = ControlChannel(store).get(sent[0])
    assert stopped.status is RunStatus.STOPPED
    assert stopped.end_reason == "emergency stop by ops@host: exchange down"
    assert stopped.summary.open_positions  # nothing was closed
    assert stopped.summary.trading_state == "active"
    assert answer is not None and answer.status is CommandStatus.DONE
    assert Path(answer.result["backup"]).is_file() and "report" not in answer.result
    again = attended(claire_home, backup_schedule="off").resume(stopped.run_id, "max")
    assert again.status is RunStatus.COMPLETED


def test_a_replay_takes_no_market_midnight_backups_and_no_reports_unless_asked(
    four_symbols: list[Path], claire_home: Path
) -> None:
    outcome = attended(claire_home).start(four_symbols, 7, "max")  # BACKUP_SCHEDULE=on
    assert outcome.status is RunStatus.COMPLETED
    assert BackupFolder(claire_home / "backups").backups() == []  # 7 market midnights, no dump
    assert not (claire_home / "reports" / outcome.run_id).exists()
    asked = PaperRunner(load_settings(initial_capital="10"), claire_home, reports=True)
    done = asked.start(four_symbols, 2, "max")
    folder = claire_home / "reports" / done.run_id
    assert sorted(p.name for p in folder.glob("*.md")) == ["day-01.md", "day-02.md", "final.md"]


def test_a_run_backs_up_each_backup_interval_of_wall_time(
    four_symbols: list[Path], claire_home: Path
) -> None:
    wall = EventClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    chosen = load_settings(initial_capital="10", backup_interval="24h")
    seen: list[datetime] = []

    def sink(view: ProgressView) -> None:  # a day and an hour of the operator's time pass
        if not seen:
            seen.append(view.market_time)
            wall.advance(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))

    steward = RunSteward.factory(claire_home, chosen, poll_s=0.0, clock=wall)
    outcome = PaperRunner(chosen, claire_home, attend=steward).start(
        four_symbols, 3, "max", progress=sink
    )
    assert outcome.status is RunStatus.COMPLETED and seen
    [backup] = BackupFolder(claire_home / "backups").backups()  # one interval, one backup
    m = backup.manifest
    assert m.reason == "interval" and m.run_id == outcome.run_id
    assert m.created_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    [run] = m.runs
    assert run["run_id"] == outcome.run_id and run["status"] == "running"
    assert m.market_time is not None and m.market_time >= seen[0]
    # The backup holds every event processed before it was taken.
    assert datetime.fromisoformat(run["last_event_ts"]) == m.market_time
    assert backup.dump.stat().st_size == m.size and ":***@" in m.database


def test_the_process_file_names_the_run_process_while_it_runs(
    four_symbols: list[Path], claire_home: Path
) -> None:
    from engine.home.processes import read_process

    seen: list[Any] = []

    def sink(view: ProgressView) -> None:
        if not seen:
            with open_store(load_settings(), claire_home) as (store, _):
                seen.append(read_process(claire_home, latest_run(store)))

    outcome = attended(claire_home, backup_schedule="off").start(
        four_symbols[:1], 1, "max", progress=sink
    )
    [record] = seen
    import os

    assert record is not None and record.pid == os.getpid() and not record.detached
    assert read_process(claire_home, outcome.run_id) is None  # removed at the end


def test_a_second_stop_is_refused_and_an_emergency_overrides_a_planned_stop(
    four_symbols: list[Path], claire_home: Path
) -> None:
    sent: list[int] = []
    with open_store(load_settings(), claire_home) as (store, _):
        channel = ControlChannel(store)

        def act(view: ProgressView, run_id: str) -> None:
            if not sent and view.open_positions:
                for kind, note in [
                    (CommandKind.STOP, "planned"),
                    (CommandKind.STOP, "planned twice"),
                    (CommandKind.EMERGENCY_STOP, "now"),
                ]:
                    sent.append(channel.send(run_id, kind, note, "ops@host"))

        outcome = attended(claire_home, backup_schedule="off").start(
            four_symbols, 7, "200000x", progress=operator(store, act)
        )
        planned, twice, emergency = (channel.get(c) for c in sent)
    assert outcome.end_reason == "emergency stop by ops@host: now"
    assert twice is not None and twice.status is CommandStatus.REFUSED
    assert twice.result["reason"] == "the run is stopping (planned)"
    assert planned is not None and planned.status is CommandStatus.REFUSED
    assert planned.result["reason"] == "an emergency stop came first"
    assert emergency is not None and emergency.status is CommandStatus.DONE
    assert Path(emergency.result["backup"]).is_file()


def test_a_run_resumed_after_a_planned_stop_says_its_trading_is_halted(
    four_symbols: list[Path], claire_home: Path
) -> None:
    sent: list[int] = []
    with open_store(load_settings(), claire_home) as (store, _):
        sink = _stop_when_holding(store, CommandKind.STOP, "a pause", sent)
        stopped = attended(claire_home, backup_schedule="off").start(
            four_symbols, 7, "200000x", progress=sink
        )
    assert stopped.status is RunStatus.STOPPED and stopped.summary.trading_state == "halted"
    heard: list[str] = []
    runner = attended(claire_home, backup_schedule="off")
    runner.ctx.on_warning = heard.append
    resumed = runner.resume(stopped.run_id, "max")
    assert resumed.summary.trading_state == "halted"
    [said] = [w for w in resumed.warnings if "is halted" in w]
    assert stopped.run_id in said and "claire risk resume --note TEXT" in said
    assert said in heard
