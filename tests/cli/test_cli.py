from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from claire_cli.main import app, lean

runner = CliRunner()


def test_help_does_not_import_the_engine_or_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from claire_cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ('engine', 'ccxt', 'psycopg', 'docker', 'jinja2', 'redis', 'pydantic')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "args", [["--help"], ["status", "--help"], ["backup", "list", "--help"], ["no-such-command"]]
)
def test_the_installed_command_line_answers_as_the_whole_app_does(args: list[str]) -> None:
    whole, chosen = runner.invoke(app, args), runner.invoke(lean(args), args)
    assert (chosen.exit_code, chosen.output) == (whole.exit_code, whole.output)


def test_the_installed_command_line_reads_only_the_command_it_runs() -> None:
    only = lean(["--debug", "status", "--json"])
    assert [c.name for c in only.registered_commands] == ["status"] and not only.registered_groups
    group = lean(["backup", "list"])
    assert [g.name for g in group.registered_groups] == ["backup"]
    assert not group.registered_commands


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [(*prefix, c.name or c.callback.__name__) for c in group.registered_commands]  # type: ignore[union-attr]
    for sub in group.registered_groups:
        found += _commands(sub.typer_instance, (*prefix, sub.name or ""))  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("path", _commands(app), ids=" ".join)
def test_every_command_has_help_text(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


def test_papertest_start_prints_a_json_summary(four_symbols: list[Path]) -> None:
    args = ["papertest", "start", "--days", "2", "--speed", "max", "--json", "--capital", "10"]
    for path in four_symbols:
        args += ["--replay", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in (
        "equity",
        "fills",
        "round_trips",
        "max_drawdown_frac",
        "max_exposure_frac",
        "risk_refusals",
        "pnl_by_symbol",
    ):
        assert key in summary
    assert summary["quote_currency"] == "BTC" and summary["initial_capital"] == "10"
    assert isinstance(summary["risk_refusals"], dict)


def test_papertest_start_in_memory_renders_a_table(four_symbols: list[Path]) -> None:
    result = runner.invoke(
        app,
        [
            "papertest",
            "start",
            "--days",
            "1",
            "--capital",
            "10",
            "--no-persist",
            "--replay",
            str(four_symbols[0]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "equity" in result.output and "BTC" in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--replay", "missing.csv"], {}, "replay file missing.csv does not exist"),
        ([], {}, "no market data given"),
        (["--replay", "x.csv", "--speed", "warp"], {}, "speed 'warp' is not like"),
        (["--replay", "x.csv"], {"MAX_POSITION_PCT": "2"}, "MAX_POSITION_PCT=2 is invalid"),
        (["--replay", "x.csv", "--strategy", "nowhere.mod:Thing"], {}, "cannot be imported"),
        (["--replay", "x.csv", "--days", "nan"], {}, "--days nan is out of range"),
        (["--replay", "x.csv", "--days", "inf"], {}, "--days inf is out of range"),
        (["--replay", "x.csv", "--days", "1e9"], {}, "--days 1e+09 is out of range"),
        (["--replay", "x.csv", "--days", "0"], {}, "--days 0 is out of range"),
        (["--replay", "x.csv", "--speed", "1e-300x"], {}, "must be from 0.01x to 10,000,000x"),
        (["--replay", "x.csv", "--capital", "1e999999"], {}, "--capital 1e999999 is out of"),
        (["--replay", "x.csv", "--capital", "0"], {}, "--capital 0 is out of range"),
        (["--replay", "x.csv", "--data-dir", ""], {}, "--data-dir is empty; name a folder"),
        (["--replay", "x.csv"], {"CLAIRE_HOME": ""}, "CLAIRE_HOME= is invalid"),
        (
            ["--replay", "x.csv"],
            {"ORDER_TTL_SECONDS": "3000000000"},
            "ORDER_TTL_SECONDS=3000000000 is out of range: it must be from 1 to 2592000",
        ),
        (["--replay", "ETH_BTC-5000w.csv"], {}, "'5000w' is not a real candle length"),
        (["--services", "--exchange", "mexc"], {}, "a live run needs --symbols, like --symbols"),
        (
            ["--services", "--replay", "x.csv", "--no-persist"],
            {},
            "--services keeps its run in the database; drop --no-persist.",
        ),
        (
            ["--services", "--resume"],
            {},
            "no Claire data in",
        ),
    ],
)
def test_errors_are_one_clear_line_and_exit_one(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text("open_time,open,high,low,close,volume\n")
    (tmp_path / "ETH_BTC-5000w.csv").write_text("open_time,open,high,low,close,volume\n")
    result = runner.invoke(app, ["papertest", "start", *args], env=env)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback() -> None:
    result = runner.invoke(app, ["--debug", "papertest", "start", "--replay", "missing.csv"])
    assert result.exit_code == 1
    assert result.exception is not None and "does not exist" in str(result.exception)


@pytest.mark.parametrize(
    "command", [["papertest", "status"], ["report", "--final"], ["export", "trades"]]
)
def test_an_empty_data_dir_is_an_error_for_every_command(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--data-dir", ""])
    assert result.exit_code == 1
    assert "--data-dir is empty" in result.output and not Path("postgres").exists()


def test_a_broken_env_file_stops_the_command_naming_the_line(four_symbols: list[Path]) -> None:
    Path(".env").write_text('INITIAL_CAPITAL=10\nMAX_OPEN_POSITIONS="2\n')
    result = runner.invoke(
        app, ["papertest", "start", "--no-persist", "--days", "1", "--replay", str(four_symbols[0])]
    )
    assert result.exit_code == 1
    assert "line 2 of .env" in result.output and "Traceback" not in result.output
