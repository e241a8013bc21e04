"""Running `claire` in-process the way a trader would, for the CLI tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from claire_cli.main import app
from tests.conftest import MARKET

runner = CliRunner()
ETH = MARKET / "ETH_BTC-5m.csv"
LTC = MARKET / "LTC_BTC-5m.csv"
XRP_TRADES = MARKET / "XRP_ETH-2019-10-11-trades.csv"


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], env=env)


def ok(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    result = invoke(*args, env=env)
    assert result.exit_code == 0, result.output
    return result


def ok_json(*args: str | Path) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def one_line(text: str) -> str:
    """The single line an error must be; fails when there are more."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def replay(*files: Path, days: str = "2", capital: str | None = "10") -> list[str]:
    args = ["papertest", "start", "--days", days]
    if capital is not None:
        args += ["--capital", capital]
    for path in files:
        args += ["--replay", str(path)]
    return args
