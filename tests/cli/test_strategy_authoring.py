"""Writing a first strategy: the manual's example, the usual mistakes, and --param."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import textwrap
from pathlib import Path

import pytest

from engine.errors import StrategyError
from tests.cli.support import ETH, XRP_TRADES, invoke, ok, ok_json, one_line, replay
from tests.conftest import MARKET, REPO

pytestmark = pytest.mark.integration


def readme_block(language: str, containing: str) -> str:
    """The strategies page's fenced `language` block that contains `containing`."""
    text = (REPO / "docs" / "strategies.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"expected one {language} block with {containing!r} in the page"
    return found[0]


def readme_strategy_command() -> list[str]:
    """The strategies page's command that runs the example, with its data paths made real."""
    block = readme_block("bash", "--days 2 --capital 10 \\\n    --strategy my_strategy:")
    args = shlex.split(block.replace("\\\n", " "))
    assert args[0] == "claire"
    return [str(MARKET / Path(a).name) if a.endswith(".csv") else a for a in args[1:]]


def test_the_readme_strategy_runs_as_written(tmp_path: Path) -> None:
    code = readme_block("python", "# my_strategy.py")
    (tmp_path / "my_strategy.py").write_text(code)  # the working folder of the run
    command = readme_strategy_command()

    out = ok_json(*command)

    assert out["status"] == "completed"
    assert out["fills"] > 0 and out["round_trips"] > 0
    assert out["strategy"] == f"{tmp_path / 'my_strategy.py'}:Breakout"
    assert out["strategy_params"] == {"entry_return": 0.004}
    signals = ok("export", "signals").stdout
    assert {row["strategy"] for row in csv.DictReader(io.StringIO(signals))} == {"breakout"}


def test_a_strategy_file_loads_by_path_from_another_folder(tmp_path: Path) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "breakout.py").write_text(readme_block("python", "# my_strategy.py"))
    out = ok_json(*replay(ETH), "--strategy", "./strategies/breakout.py:Breakout")
    assert out["strategy"] == f"{folder / 'breakout.py'}:Breakout" and out["fills"] > 0


ECHO = '''
from decimal import Decimal

from engine.events import Side
from engine.signal.base import Intent, Strategy


class Echo(Strategy):
    """Every `every` bars a buy, then a sell, with `label` as the reason."""

    name = "echo"

    def __init__(self, label: str = "none", every: int = 10) -> None:
        self.label, self.every, self.bars = label, every, 0

    def on_candle(self, candle, context):
        self.bars += 1
        if self.bars % self.every:
            return []
        held = context.position(candle.symbol)
        side = Side.SELL if held is not None and held.qty > 0 else Side.BUY
        return [Intent(candle.symbol, side, Decimal(1), f"label={self.label}")]
'''


def test_params_reach_the_strategy_and_are_stored_with_the_run(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(ECHO)
    out = ok_json(
        *replay(ETH, days="1"), "--strategy", "echo:Echo", "--param", "label=hi", "--param",
        "every=7",
    )  # fmt: skip
    # every=7 arrived as an int: the strategy computes with it.
    rows = list(csv.DictReader(io.StringIO(ok("export", "signals").stdout)))
    assert len(rows) == out["market_events"] // 7
    assert {r["reason"] for r in rows} == {"label=hi"}
    assert out["strategy_params"] == {"label": "hi", "every": 7}
    status = ok_json("papertest", "status")[0]
    report = ok_json("report")
    assert status["strategy_params"] == report["strategy_params"] == {"label": "hi", "every": 7}
    assert report["strategy"] == status["strategy"] == f"{tmp_path / 'echo.py'}:Echo"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["colour=blue"], "--param colour: Echo has no parameter 'colour'; it takes label, every"),
        (["every=often"], "--param every=often is not a valid int for Echo"),
        (["every"], "--param 'every' is not like name=value"),
    ],
)
def test_a_bad_param_is_one_line_naming_it_and_nothing_runs(
    tmp_path: Path, claire_home: Path, params: list[str], message: str
) -> None:
    (tmp_path / "echo.py").write_text(ECHO)
    args = [*replay(ETH), "--strategy", "echo:Echo"]
    for p in params:
        args += ["--param", p]
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in one_line(result.output)
    assert not (claire_home / "postgres").exists()


WRONG_SIGNATURE = """
from engine.signal.base import Strategy


class Forgetful(Strategy):
    def on_candle(self, candle):
        return []
"""


def test_a_wrong_on_candle_signature_is_one_line_with_the_expected_one(tmp_path: Path) -> None:
    (tmp_path / "forgetful.py").write_text(WRONG_SIGNATURE)
    result = invoke(*replay(ETH), "--strategy", "forgetful:Forgetful")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert "Forgetful.on_candle(self, candle) has the wrong signature" in line
    assert "expected def on_candle(self, candle, context)" in line
    assert "Traceback" not in result.output


def test_a_module_that_is_nowhere_says_where_it_looked() -> None:
    result = invoke(*replay(ETH), "--strategy", "not_here:Thing")
    assert result.exit_code == 1
    assert "no not_here.py in the working folder" in one_line(result.output)


BOOM = """
from engine.signal.base import Strategy


class Boom(Strategy):
    def __init__(self) -> None:
        self.bars = 0

    def on_candle(self, candle, context):
        self.bars += 1
        return [] if self.bars < 40 else [1 / 0]
"""


def test_a_strategy_that_raises_fails_the_run_with_the_reason_stored(tmp_path: Path) -> None:
    path = tmp_path / "boom.py"
    path.write_text(BOOM)
    result = invoke(*replay(ETH), "--strategy", "boom:Boom")
    assert result.exit_code == 1
    line = one_line(result.output)
    assert "strategy Boom raised ZeroDivisionError: division by zero" in line
    assert f"at {path}:11" in line and "Traceback" not in result.output

    [status] = ok_json("papertest", "status")
    assert status["status"] == "failed"
    assert "Boom raised ZeroDivisionError" in status["end_reason"]
    text = ok("papertest", "status").stdout
    assert "failure" in text and "Boom raised ZeroDivisionError" in text
    assert "trading state | none: the run failed" in " ".join(text.replace("│", "|").split())
    report = ok_json("report")
    assert report["status"] == "failed" and "ZeroDivisionError" in report["end_reason"]
    assert "Status: failed: strategy Boom raised" in ok("report").stdout
    resume = invoke("papertest", "start", "--resume", "--run", status["run_id"])
    assert resume.exit_code == 1 and "failed (strategy Boom raised" in resume.output


def test_debug_shows_the_strategy_traceback(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(BOOM)
    result = invoke("--debug", *replay(ETH), "--strategy", "boom:Boom", "--no-persist")
    assert result.exit_code == 1
    assert isinstance(result.exception, StrategyError)
    assert isinstance(result.exception.__cause__, ZeroDivisionError)


def test_a_candle_strategy_on_trades_only_says_why_it_made_no_fills() -> None:
    result = ok(
        "papertest", "start", "--replay", XRP_TRADES, "--capital", "10", "--days", "0.2",
        "--json",
    )  # fmt: skip
    warning = (
        "the market data holds only trades, and MomentumStrategy only reads candles "
        "(on_candle), so it makes no signals and no fills"
    )
    assert warning in result.stderr
    out = json.loads(result.stdout)
    assert out["fills"] == 0 and any(warning in w for w in out["warnings"])


def test_a_file_strategy_with_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(textwrap.dedent("x = 1\ndef on_candle(:\n"))
    result = invoke(*replay(ETH), "--strategy", "./broken.py:Broken")
    assert result.exit_code == 1
    assert "has a syntax error at line 2" in one_line(result.output)
