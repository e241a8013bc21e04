"""A detached week of replay: watched with `claire status`, stopped, halted and resumed by an
operator through the control channel, and stopped by SIGTERM when it takes no command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.home.processes import read_process
from engine.ops.commands import Operator
from tests.cli.support import ETH, invoke, ok, ok_json, one_line

pytestmark = pytest.mark.integration


def week(files: list[Path], speed: str) -> list[str]:
    args = ["papertest", "start", "--days", "7", "--capital", "10", "--speed", speed]
    for path in files:
        args += ["--replay", str(path)]
    return [*args, "--detach"]


def status() -> tuple[int, Any]:
    result = invoke("status", "--json")
    return result.exit_code, json.loads(result.stdout)


def wait_until(test: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = test()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_detached_week_is_watched_then_stopped_flat_with_its_final_report(
    four_symbols: list[Path], claire_home: Path
) -> None:
    started = ok_json(*week(four_symbols, "3600x"))
    assert started["status"] == "running" and started["first_event"] is True
    run_id, pid = started["run_id"], started["pid"]
    assert Path(started["log"]) == claire_home / "runs" / f"{run_id}.log"
    process = read_process(claire_home, run_id)
    assert process is not None and process.pid == pid and process.detached
    assert os.getsid(pid) == pid  # a session of its own: no terminal reaches it

    code, first = status()
    assert code == 0 and first["health"] == "healthy" and first["run_id"] == run_id
    assert first["status"] == "running" and first["uptime_s"] is not None
    assert {p["name"]: p["alive"] for p in first["processes"]} == {"run": True, "postgres": True}
    assert [s["symbol"] for s in first["symbols"]] == ["ADABTC", "DASHBTC", "ETHBTC", "LTCBTC"]
    assert first["daily_drawdown_limit_frac"] == "0.05"
    assert first["exposure_limit_frac"] == "0.3"
    moved = wait_until(
        lambda: (s := status()[1])["progress_frac"] > first["progress_frac"] and s, "progress"
    )
    assert moved["market_time"] > first["market_time"]

    stopped = ok_json("papertest", "stop", "--reason", "end of the watch")
    assert stopped["command"] == "stop" and stopped["status"] == "done"
    result = stopped["result"]
    assert result["status"] == "stopped" and result["open_positions"] == []
    assert Path(result["report"]).is_file() and Path(result["backup"]).is_file()
    wait_until(lambda: gone(pid), "the run's process to end")

    code, after = status()
    assert code == 0 and after["status"] == "stopped" and after["open_positions"] == []
    assert after["end_reason"].endswith(": end of the watch")
    assert after["commands"][0]["status"] == "done"
    report = json.loads(ok("report", "--final", "--json").stdout)
    assert report["open_positions"] == [] and report["status"] == "stopped"
    assert "--resume" in Path(started["log"]).read_text()  # the run's own summary and hint


def test_risk_resume_after_the_circuit_breaker_is_applied_and_kept(
    four_symbols: list[Path], claire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCUIT_BREAKER_THRESHOLD_PCT", "0.01")  # trips on day two
    started = ok_json(*week(four_symbols, "20000x"))
    early = invoke("risk", "resume", "--note", "nothing to resume yet")
    assert early.exit_code == 1
    assert "refused to resume: trading is active, not halted" in one_line(early.stderr)

    halted = wait_until(
        lambda: (s := status()) and s[1]["trading_state"] == "halted" and s, "the breaker"
    )
    code, seen = halted
    assert code == 1 and seen["health"] == "degraded"
    assert any("trading is halted" in r and "claire risk resume" in r for r in seen["reasons"])

    note = "breaker checked: a real move, the limits stand"
    answer = ok_json("risk", "resume", "--note", note)
    assert answer["status"] == "done" and answer["result"]["trading_state"] == "active"
    stopped = ok_json("papertest", "stop", "--emergency", "--reason", "end of the test")
    # An emergency stop leaves a bundle of how the run looked, for the review after it.
    bundle = Path(stopped["bundle"])
    assert bundle.parent == claire_home / "incidents" and bundle.name.startswith("emergency-")
    with tarfile.open(bundle) as tar:
        assert {"manifest.json", "status.json", "config.json"} <= set(tar.getnames())
    with open_store(load_settings(), claire_home) as (store, _):
        changes = store.db.fetch_all(
            "SELECT ts, reason, detail FROM risk_events WHERE run_id = %s "
            "AND kind = 'state_change' ORDER BY ts, event_id",
            (started["run_id"],),
        )
        commands = store.db.fetch_all(
            "SELECT command, note, status, market_ts FROM run_commands WHERE run_id = %s "
            "ORDER BY command_id",
            (started["run_id"],),
        )
    reasons = [c["reason"] for c in changes]
    assert reasons[:2] == ["circuit_breaker", "operator_resume"]
    resumed = changes[1]
    assert resumed["detail"]["note"] == note and resumed["detail"]["from"] == "halted"
    assert [(c["command"], c["status"]) for c in commands] == [
        ("resume", "refused"),
        ("resume", "done"),
        ("emergency_stop", "done"),
    ]
    assert commands[1]["note"] == note and commands[1]["market_ts"] == resumed["ts"]


def test_an_emergency_stop_the_run_cannot_take_arrives_as_sigterm(
    four_symbols: list[Path], claire_home: Path
) -> None:
    started = ok_json(*week(four_symbols, "20000x"))
    pid = started["pid"]
    os.kill(pid, signal.SIGSTOP)  # a run stuck outside its event loop
    wake = threading.Timer(2.0, os.kill, (pid, signal.SIGCONT))
    wake.start()
    try:
        with open_store(load_settings(), claire_home) as (store, _):
            answer = Operator(store, claire_home).stop("stuck", emergency=True, grace_s=0.5)
    finally:
        wake.cancel()
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            os.kill(pid, signal.SIGCONT)
    assert answer.status.value == "done" and answer.result["via"] == "SIGTERM"
    assert answer.result["pid"] == pid and answer.result["status"] == "stopped"
    assert answer.result["end_reason"] == "stopped by SIGTERM; resumable"
    assert Path(answer.result["backup"]).is_file()


def test_a_detached_run_that_fails_at_once_says_why(tmp_path: Path, claire_home: Path) -> None:
    strategy = tmp_path / "boom.py"
    strategy.write_text(
        "from engine.signal.base import Strategy\n\n"
        "class Boom(Strategy):\n"
        "    def on_candle(self, candle, context):\n"
        "        raise RuntimeError('no luck today')\n"
    )
    result = invoke(*week([ETH], "max"), "--strategy", f"{strategy}:Boom")
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert "ended at once" in line and "no luck today" in line and "its log is" in line
    [run] = ok_json("papertest", "status")
    assert run["status"] == "failed"


def test_a_foreground_run_in_another_terminal_stops_on_command(
    four_symbols: list[Path], claire_home: Path
) -> None:
    from tests.paperrun.runs import claire_process, replay_args, wait_for_checkpoint

    child = claire_process(replay_args(four_symbols, "--speed", "20000x"))
    wait_for_checkpoint(child, claire_home, 200)
    stopped = ok_json("papertest", "stop", "--reason", "from the other terminal")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "stopped by the operator after" in out and "--resume" in out
    assert stopped["result"]["open_positions"] == []
    assert "planned stop by" in stopped["result"]["end_reason"]
