"""Errors that say the truth, capital that matches the market, and consistent options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import ETH, invoke, ok, ok_json, one_line, replay

pytestmark = pytest.mark.integration


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["papertest", "status"], ["report"], ["report", "--final"], ["export", "trades"]],
    ids=" ".join,
)
def test_an_unknown_run_is_named_with_its_folder(command: list[str], claire_home: Path) -> None:
    ok(*replay(ETH, days="0.5"))
    result = invoke(*command, "--run", "nope")
    assert result.exit_code == 1
    assert f"no run nope in {claire_home};" in one_line(result.output)


@pytest.mark.parametrize(
    "command",
    [["papertest", "status"], ["report"], ["export", "orders"], ["db", "url"], ["db", "psql"]],
    ids=" ".join,
)
def test_read_commands_never_create_a_database(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (missing, empty):
        result = invoke(*command, "--data-dir", folder)
        assert result.exit_code == 1, result.output
        assert f"no Claire data in {folder};" in one_line(result.output)
    assert not missing.exists()
    assert list(empty.iterdir()) == []


def test_resume_in_a_folder_without_data_is_the_same_error(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    result = invoke("papertest", "start", "--resume", "--data-dir", typo)
    assert result.exit_code == 1
    assert f"no Claire data in {typo};" in one_line(result.output)
    assert not typo.exists()


def test_a_status_of_a_folder_without_data_is_an_error_too(claire_home: Path) -> None:
    result = invoke("papertest", "status")
    assert result.exit_code == 1
    assert f"no Claire data in {claire_home}" in one_line(result.output)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "is not a positive amount"),
        ("nan", "is not a positive amount"),
        ("inf", "is not a positive amount"),
        ("0", "is out of range: it must be from 0.00000001"),
        ("-5", "is out of range: it must be from 0.00000001"),
    ],
)
def test_a_bad_capital_blames_the_capital_option(
    value: str, problem: str, claire_home: Path
) -> None:
    result = invoke("papertest", "start", "--replay", ETH, "--capital", value)
    assert result.exit_code == 1
    line = one_line(result.output)
    assert f"--capital {value} {problem}" in line
    assert "INITIAL_CAPITAL" not in line
    assert not (claire_home / "postgres").exists()


# --- capital that matches the market ---------------------------------------------------


def test_default_capital_in_a_btc_market_warns_before_the_run(claire_home: Path) -> None:
    result = ok(*replay(ETH, days="0.5", capital=None), "--json")
    warnings = result.stderr
    assert (
        "INITIAL_CAPITAL is the default 100000, meant in a USD stablecoin, but this run is "
        "quoted in BTC" in warnings
    )
    assert "pass --capital with an amount of BTC" in warnings
    assert "one entry (5 % of 100000 BTC) is larger than what the market trades" in warnings
    assert "ETHBTC about" in warnings
    out = json.loads(result.stdout)
    assert len(out["warnings"]) == 2 and out["initial_capital"] == "100000"


def test_capital_given_in_the_quote_currency_does_not_warn() -> None:
    result = ok(*replay(ETH, days="0.5"), "--json")
    assert "warning" not in result.stderr
    assert json.loads(result.stdout)["warnings"] == []


def test_capital_from_the_environment_counts_as_chosen() -> None:
    result = ok(*replay(ETH, days="0.5", capital=None), "--json", env={"INITIAL_CAPITAL": "10"})
    assert "INITIAL_CAPITAL is the default" not in result.stderr


def test_the_in_memory_run_warns_too() -> None:
    result = ok(*replay(ETH, days="0.5", capital=None), "--no-persist")
    assert "INITIAL_CAPITAL is the default" in result.stderr


# --- options -------------------------------------------------------------------------


def test_claire_alone_prints_help_and_succeeds() -> None:
    for args in ([], ["papertest"], ["db"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Usage: claire")


def test_version() -> None:
    assert ok("--version").stdout.strip() == "claire 0.1.0"


@pytest.mark.parametrize(
    "command",
    [[], ["papertest", "start"], ["papertest", "status"], ["report"], ["export"], ["db", "psql"]],
    ids=" ".join,
)
def test_help_shows_no_type_noise(command: list[str]) -> None:
    text = ok(*command, "--help").stdout
    for noise in ("<bool>", "<str>", "<float>", "<list", "<dir>", "<path>"):
        assert noise not in text, text


def test_report_and_export_accept_json_like_every_read_command() -> None:
    ok(*replay(ETH, days="0.5"))
    assert json.loads(ok("report", "--json").stdout) == json.loads(
        ok("report", "--final", "--format", "json").stdout
    )
    assert json.loads(ok("export", "orders", "--json").stdout) == json.loads(
        ok("export", "orders", "--format", "json").stdout
    )
    assert isinstance(json.loads(ok("papertest", "status", "--json").stdout), list)
    clash = invoke("report", "--json", "--format", "md")
    assert clash.exit_code == 1 and "--json and --format md disagree" in clash.output


def test_output_to_a_pipe_is_never_wrapped(claire_home: Path) -> None:
    deep = claire_home / ("a-rather-long-folder-name-" * 6) / "data"
    narrow = {"COLUMNS": "40"}
    result = invoke("papertest", "status", "--data-dir", deep, env=narrow)
    assert result.exit_code == 1
    assert f"no Claire data in {deep}; check --data-dir" in one_line(result.output)
    ok(*replay(ETH, days="0.5"), "--data-dir", deep, env=narrow)
    text = ok("papertest", "status", "--data-dir", deep, env=narrow).stdout
    assert f"Paper runs in {deep} (newest first)" in text.splitlines()[0]
    assert any("parameters" in line and "lookback_bars=12" in line for line in text.splitlines())
    assert any("stop_loss_pct=0.03 cooldown_bars=6" in line for line in text.splitlines())


def test_status_json_of_one_run() -> None:
    out = ok_json(*replay(ETH, days="0.5"))
    [status] = ok_json("papertest", "status", "--run", out["run_id"])
    assert status["run_id"] == out["run_id"] and status["status"] == "completed"
