"""Every SQL panel of the dashboard, run against a real PostgreSQL holding a finished
7-day replay of the shipped data: the rows have the shape its panel draws, and the
figures agree with the run's own summary."""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings, load_settings
from engine.home.database import open_store
from engine.kernel.pipeline import RunSummary
from engine.run.runner import PaperRunner
from engine.store import Store
from tests.monitoring.support import dashboard, panels

pytestmark = pytest.mark.integration
SETTINGS = {name.upper() for name in Settings.model_fields}
NUMBER = (int, float, Decimal)


@dataclass(frozen=True)
class Run:
    store: Store
    run_id: str
    summary: RunSummary


@pytest.fixture(scope="module")
def run(four_symbols: list[Path]) -> Iterator[Run]:
    """A finished 7-day replay of the shipped data in the data folder's database."""
    home = Path(tempfile.mkdtemp(prefix="claire-grafana-"))
    os.chmod(home, 0o711)
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if (name.startswith("CLAIRE_") and name != "CLAIRE_SHARED_DATA") or name in SETTINGS:
                env.delenv(name)
        env.setenv("CLAIRE_HTTP_PORT", "off")
        settings = load_settings(
            initial_capital="10", claire_auto_reports=False, backup_schedule="off"
        )
        outcome = PaperRunner(settings, home).start(four_symbols, 7, "max")
        assert outcome.status.value == "completed"
        with open_store(settings, home) as (store, _):
            yield Run(store, outcome.run_id, outcome.summary)
    shutil.rmtree(home, ignore_errors=True)


def grafana_sql(sql: str, run_id: str, start: datetime, end: datetime) -> str:
    """What Grafana sends to PostgreSQL: the run variable and the time macros expanded."""
    frm, to = (f"'{t.isoformat()}'" for t in (start, end))
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {frm} AND {to}", sql)
    sql = sql.replace("$__timeFrom()", frm).replace("$__timeTo()", to)
    sql = sql.replace("${run}", run_id).replace("$run", run_id)
    assert "$" not in sql, sql
    return sql


Row = dict[str, Any]


def _query(
    run: Run, title: str, start: datetime | None = None, end: datetime | None = None
) -> tuple[Row, Row, list[Row]]:
    """The panel, its query and the rows it gets over the run's market time (or a range)."""
    [panel] = [p for p in panels(dashboard()) if p["title"] == title]
    [target] = panel["targets"]
    start, end = start or run.summary.market_start, end or run.summary.market_end
    assert start is not None and end is not None
    sql = grafana_sql(target["rawSql"], run.run_id, start, end)
    return panel, target, run.store.db.fetch_all(sql, {})


def _sql_panels() -> list[str]:
    return [p["title"] for p in panels(dashboard()) if "rawSql" in p["targets"][0]]


def _close(a: Any, b: Any) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("title", _sql_panels())
def test_every_sql_panel_returns_rows_of_the_shape_its_panel_draws(run: Run, title: str) -> None:
    panel, target, rows = _query(run, title)
    assert rows, title
    columns = list(rows[0])
    kind = panel["type"]
    if kind == "timeseries":
        assert target["format"] == "time_series"
        assert columns[0] == "time" and len(columns) >= 2
        times = [r["time"] for r in rows]
        assert all(isinstance(t, datetime) and t.tzinfo is not None for t in times)
        assert times == sorted(times)  # Grafana wants a time series in time order
        assert all(isinstance(r[c], NUMBER) for r in rows for c in columns[1:])
    elif kind in ("gauge", "stat"):
        assert target["format"] == "table"
        assert len(rows) == 1 and len(columns) == 1
        assert isinstance(rows[0][columns[0]], NUMBER)
    elif kind == "barchart":
        x = panel["options"]["xField"]
        assert x in columns and all(isinstance(r[x], str) for r in rows)
        values = [c for c in columns if c != x]
        assert values and all(isinstance(r[c], NUMBER) for r in rows for c in values)
    elif kind == "table":
        assert target["format"] == "table" and len(rows) <= 50
        assert columns[0] == "time" and "symbol" in columns and "price" in columns
    else:
        raise AssertionError(f"no shape known for a {kind} panel")


def test_the_run_variable_lists_the_newest_run_first(run: Run) -> None:
    [variable] = dashboard()["templating"]["list"]
    rows = run.store.db.fetch_all(variable["query"], {})
    assert rows and rows[0]["run_id"] == run.run_id


def test_the_account_panels_show_the_runs_final_figures(run: Run) -> None:
    s = run.summary
    value = {t: next(iter(_query(run, t)[2][0].values())) for t in _sql_panels()}
    assert _close(value["Daily drawdown"], s.daily_drawdown_frac)
    assert _close(value["Exposure"], s.exposure_frac)
    assert value["Open positions"] == len(s.open_positions)
    assert _close(value["Total PnL"], s.equity - s.initial_capital)
    assert s.round_trips > 0
    assert _close(value["Win rate"], Decimal(s.wins) / s.round_trips)


def test_the_curves_and_bars_add_up_to_the_run(run: Run) -> None:
    s = run.summary
    equity = _query(run, "Equity curve")[2]
    assert _close(equity[-1]["equity"], s.equity)
    assert s.market_start is not None and equity[0]["time"] >= s.market_start
    days = _query(run, "Daily PnL")[2]
    assert len(days) in (7, 8)  # seven days from a start within the first day
    assert [d["day"] for d in days] == sorted(d["day"] for d in days)
    assert _close(sum(d["pnl"] for d in days), s.equity - s.initial_capital)
    trades = _query(run, "Trades per day")[2]
    assert sum(t["trades"] for t in trades) == s.fills
    recent = _query(run, "Recent trades")[2]
    assert len(recent) == min(50, s.fills)
    assert [r["time"] for r in recent] == sorted((r["time"] for r in recent), reverse=True)


def test_the_time_range_limits_what_the_series_show(run: Run) -> None:
    far = datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    later = datetime.fromisoformat("2030-01-08T00:00:00+00:00")
    for title in ("Equity curve", "Daily PnL", "Trades per day"):
        assert _query(run, title, far, later)[2] == [], title
    # The account panels show the run now, whatever the range.
    assert _query(run, "Total PnL", far, later)[2]
