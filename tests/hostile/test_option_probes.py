"""Hostile options and replay files: one sentence, exit code 1, and no run recorded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.cli.support import ETH, invoke, one_line

BASE = ["papertest", "start", "--days", "1", "--speed", "max", "--capital", "10"]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _refused(claire_home: Path, *args: str | Path) -> str:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert line.startswith("error: "), line
    if (claire_home / "postgres").exists():  # preflight ran: it must have recorded no run
        assert "no runs in" in invoke("papertest", "status").output
    return line


# --- empty values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["papertest", "start", "--replay", ETH, "--speed", ""], "error: --speed is empty; "),
        (["papertest", "start", "--replay", ETH, "--strategy", ""], "error: --strategy is empty; "),
        (["papertest", "start", "--replay", ETH, "--speed", " "], "error: --speed is empty; "),
        (["papertest", "status", "--run", ""], "error: --run is empty; "),
        (["report", "--run", ""], "error: --run is empty; "),
        (["export", "trades", "--run", ""], "error: --run is empty; "),
        (["logs", "--run", ""], "error: --run is empty; "),
        (["db", "psql", "--run", ""], "error: --run is empty; "),
    ],
    ids=lambda v: " ".join(map(str, v)) if isinstance(v, list) else None,
)
def test_an_empty_value_is_refused(args: list[str | Path], says: str, claire_home: Path) -> None:
    assert _refused(claire_home, *args).startswith(says)


@pytest.mark.parametrize("speed", ["\uff16\uff10x", "1_0x", "nan", "inf", "0x", "-1x", "abc"])
def test_a_bad_speed_is_refused(speed: str, claire_home: Path) -> None:
    line = _refused(claire_home, *BASE[:4], "--replay", ETH, "--speed", speed)
    assert f"speed {speed!r}" in line


# --- strategy parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("cooldown_bars=-1", "cooldown_bars must be 0 or more"),
        ("stop_loss_pct=-1", "stop_loss_pct must be a fraction between 0 and 1"),
        ("stop_loss_pct=0", "stop_loss_pct must be a fraction between 0 and 1"),
        ("entry_return=nan", "--param entry_return=nan is not a finite number"),
        ("entry_return=inf", "--param entry_return=inf is not a finite number"),
        ("entry_return=-inf", "--param entry_return=-inf is not a finite number"),
        ("entry_return=1e400", "--param entry_return=1e400 is not a finite number"),
        ("entry_return=5", "entry_return must be a return between -1 and 1"),
        ("exit_return=nan", "--param exit_return=nan is not a finite number"),
        ("lookback_bars=\uff15", "--param lookback_bars=\uff15 is not a plain int"),
        ("lookback_bars=1_0", "--param lookback_bars=1_0 is not a plain int"),
        ("entry_return=0.0_1", "--param entry_return=0.0_1 is not a plain float"),
    ],
)
def test_a_bad_momentum_parameter_is_named_before_the_run(
    param: str, says: str, claire_home: Path
) -> None:
    line = _refused(claire_home, *BASE, "--replay", ETH, "--param", param)
    assert says in line, line


@pytest.mark.parametrize(
    "param",
    ["pullback_pct=-1", "take_profit_pct=0", "stop_loss_pct=2", "entry_return=nan",
     "entry_ttl_bars=0"],
)  # fmt: skip
def test_a_bad_pullback_parameter_is_named_before_the_run(param: str, claire_home: Path) -> None:
    strategy = "engine.signal.pullback:PullbackLimitStrategy"
    line = _refused(claire_home, *BASE, "--replay", ETH, "--strategy", strategy, "--param", param)
    assert param.split("=")[0] in line, line


# --- replay files that lie --------------------------------------------------------------------


def _rows(path: Path, step_ms: int, count: int = 600) -> Path:
    t0 = 1515560100000
    lines = ["open_time,open,high,low,close,volume"]
    lines += [f"{t0 + i * step_ms},1,2,0.5,1.5,10" for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rows_closer_than_the_named_interval_are_a_lie(tmp_path: Path, claire_home: Path) -> None:
    path = _rows(tmp_path / "ETH_BTC-5m.csv", 60_000)
    line = _refused(claire_home, *BASE, "--replay", path)
    assert (
        "replay file ETH_BTC-5m.csv is named for candles 5 minutes apart but its rows are "
        "1 minute apart;"
    ) in line


def test_larger_gaps_stay_tolerated(tmp_path: Path, claire_home: Path) -> None:
    path = _rows(tmp_path / "ETH_BTC-1m.csv", 300_000)
    result = invoke(*BASE, "--no-persist", "--replay", path)
    assert result.exit_code == 0, result.output


def test_a_market_against_itself_is_refused(tmp_path: Path, claire_home: Path) -> None:
    path = tmp_path / "BTC_BTC-5m.csv"
    shutil.copy(ETH, path)
    line = _refused(claire_home, *BASE, "--replay", path)
    assert "replay file BTC_BTC-5m.csv trades BTC against itself;" in line


def _not_regular(tmp_path: Path, kind: str) -> Path:
    if kind == "folder":
        path = tmp_path / "ETH_BTC-5m.csv"
        path.mkdir()
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "ETH_BTC-5m.csv"
        os.mkfifo(path)
    elif kind == "link to a fifo":
        os.mkfifo(tmp_path / "pipe")
        path = tmp_path / "ETH_BTC-5m.csv"
        path.symlink_to(tmp_path / "pipe")
    else:
        path = tmp_path / "ETH_BTC-5m.csv"
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["folder", "device", "fifo", "link to a fifo", "link to a device"])
def test_what_is_not_a_regular_file_is_named_so(
    kind: str, tmp_path: Path, claire_home: Path
) -> None:
    path = _not_regular(tmp_path, kind)
    line = _refused(claire_home, *BASE, "--replay", path)
    assert f"replay file {path} is not a regular file" in line, line
    assert "does not exist" not in line


@pytest.mark.parametrize(
    ("days", "says"),
    [
        ("\uff11", "--days \uff11 is not a number written with the digits 0-9"),
        ("1_0", "--days 1_0 is not a number written with the digits 0-9"),
        ("abc", "--days abc is not a number written with the digits 0-9"),
        ("", "--days is empty"),
        ("nan", "--days nan is out of range"),
        ("1e400", "--days inf is out of range"),
        ("-1", "--days -1 is out of range"),
    ],
)
def test_a_bad_number_of_days_is_one_sentence(days: str, says: str, claire_home: Path) -> None:
    args = ["papertest", "start", "--replay", ETH, "--speed", "max", "--capital", "10"]
    line = _refused(claire_home, *args, "--days", days)
    assert line.startswith(f"error: {says}"), line
