"""Ctrl-C during a replay: a partial summary, the exact resume command, and an exact resume."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from engine.config import load_settings
from engine.kernel.pipeline import run_replay
from engine.kernel.progress import ProgressView
from engine.run.runner import PaperRunner
from engine.runtime.postgres import attach_url
from engine.signal.loader import StrategyChoice
from engine.store import RunStatus
from tests.cli.support import ok_json

pytestmark = pytest.mark.integration
PARAMS = {"lookback_bars": "10"}


@pytest.fixture(scope="module")
def unbroken(four_symbols: list[Path]) -> Any:
    choice = StrategyChoice.resolve("engine.signal.momentum:MomentumStrategy", PARAMS)
    summary, _ = run_replay(
        load_settings(initial_capital="10"), four_symbols, days=2, choice=choice
    )
    return summary


def _checkpointed(home: Path) -> int:
    url = attach_url(home)
    if url is None:
        return 0
    try:
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=2) as conn:
            row = conn.execute("SELECT max(market_events) AS n FROM run_checkpoints").fetchone()
    except psycopg.Error:
        return 0
    return int(row["n"] or 0) if row else 0


def test_ctrl_c_prints_a_partial_summary_and_the_resume_command_that_works(
    four_symbols: list[Path], claire_home: Path, unbroken: Any
) -> None:
    args = [sys.executable, "-m", "claire_cli.main", "papertest", "start", "--days", "2"]
    args += ["--capital", "10", "--speed", "40000x", "--param", "lookback_bars=10"]
    for path in four_symbols:
        args += ["--replay", str(path)]
    child = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    deadline = time.monotonic() + 60
    while _checkpointed(claire_home) < 500:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the run never checkpointed"
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err

    assert "Partial summary" in out and "stopped by Ctrl-C" in out
    lines = out.splitlines()
    marker = next(i for i, line in enumerate(lines) if "continue exactly where it stopped" in line)
    command = shlex.split(lines[marker + 1])
    assert command[:4] == ["claire", "papertest", "start", "--resume"]
    assert command[-2:] == ["--data-dir", str(claire_home)]

    [stopped] = ok_json("papertest", "status")
    assert (
        stopped["status"] == "stopped" and stopped["end_reason"] == "stopped by Ctrl-C; resumable"
    )
    assert 0 < Decimal(stopped["progress_frac"]) < 1

    resumed = ok_json(*command[1:])
    assert resumed["run_id"] == stopped["run_id"] and resumed["status"] == "completed"
    assert resumed["speed"] == "40000x"  # the speed the run was started with
    assert resumed["resumed_after_events"] >= 500
    assert resumed["strategy_params"]["lookback_bars"] == 10
    assert Decimal(resumed["equity"]) == unbroken.equity
    assert resumed["fills"] == unbroken.fills


def test_a_stop_between_events_is_resumable_with_the_same_fills(
    four_symbols: list[Path], claire_home: Path, unbroken: Any
) -> None:
    seen: list[ProgressView] = []

    def interrupt_once(view: ProgressView) -> None:
        seen.append(view)
        if len(seen) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the terminal sends it

    settings = load_settings(initial_capital="10")
    choice = StrategyChoice.resolve("engine.signal.momentum:MomentumStrategy", PARAMS)
    runner = PaperRunner(settings, claire_home, choice=choice)
    stopped = runner.start(four_symbols, 2, "max", progress=interrupt_once)
    assert stopped.status is RunStatus.STOPPED and stopped.stop_signal == signal.SIGINT
    assert 0 < stopped.summary.market_events < unbroken.market_events
    assert seen[-1].market_time == stopped.summary.market_end
    assert all(v.quote_currency == "BTC" and v.done_frac is not None for v in seen)

    again = PaperRunner(settings, claire_home).resume(stopped.run_id)
    assert again.status is RunStatus.COMPLETED and again.speed == "max"
    assert again.summary.equity == unbroken.equity
    assert again.summary.fills == unbroken.fills
    assert json.dumps(again.summary.as_json()["strategy_params"]) == json.dumps(
        unbroken.as_json()["strategy_params"]
    )
