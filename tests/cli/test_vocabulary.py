"""One vocabulary: the start summary, `papertest status` and `report` name and measure alike."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from tests.cli.support import ETH, LTC, ok, ok_json, replay
from tests.conftest import MARKET

pytestmark = pytest.mark.integration
D = Decimal
DASH = MARKET / "DASH_BTC-5m.csv"
SETTINGS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def home() -> Iterator[str]:
    """One data folder for the module's run; as root the server's account must enter it."""
    folder = Path(tempfile.mkdtemp(prefix="claire-vocab-"))
    os.chmod(folder, 0o711)
    yield str(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def one_run(home: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The start summary, the status and the final report of one finished run."""
    with pytest.MonkeyPatch.context() as env:
        # Module fixtures run before the per-test clean environment: make our own.
        for name in list(os.environ):
            if (name.startswith("CLAIRE_") and name != "CLAIRE_SHARED_DATA") or name in SETTINGS:
                env.delenv(name)
        env.chdir(home)
        args = replay(ETH, LTC, DASH, days="4")
        start = ok_json(*args, "--param", "lookback_bars=10", "--data-dir", home)
        [status] = ok_json("papertest", "status", "--data-dir", home)
        report = ok_json("report", "--data-dir", home)
    return start, status, report


def _shares(body: dict[str, Any]) -> set[str]:
    words = {"drawdown", "exposure", "rate", "progress"}
    return {k for k in body if words & set(k.split("_"))}


def test_start_status_and_report_agree_on_every_figure_they_share(one_run: Any) -> None:
    start, status, report = one_run
    pairs = [("start", start, "status", status), ("start", start, "report", report)]
    pairs.append(("status", status, "report", report))
    compared = set()
    for a_name, a, b_name, b in pairs:
        for key in sorted(set(a) & set(b)):
            assert a[key] == b[key], f"{key}: {a_name} says {a[key]!r}, {b_name} {b[key]!r}"
            compared.add(key)
    # The figures a trader compares across the three, all present under one name.
    for key in (
        "run_id", "status", "strategy", "strategy_params", "risk_settings", "quote_currency",
        "started_at", "ended_at", "market_start", "market_end", "initial_capital", "equity",
        "total_pnl", "realized_pnl", "unrealized_pnl", "fees", "fills", "orders_by_status",
        "max_drawdown_frac", "drawdown_frac", "daily_drawdown_frac", "max_exposure_frac",
        "exposure_frac", "risk_refusals", "alerts", "trading_state", "round_trips", "wins",
        "win_rate_frac", "pnl_by_symbol", "open_positions",
    ):  # fmt: skip
        assert key in compared, key
    assert start["strategy_params"]["lookback_bars"] == 10
    assert start["risk_settings"]["MAX_POSITION_PCT"] == "0.1"


def test_every_share_is_a_fraction_named_frac(one_run: Any) -> None:
    for body in one_run:
        for key in _shares(body):
            assert key.endswith("_frac"), key
            assert 0 <= D(body[key]) <= 1, (key, body[key])
    start, status, _ = one_run
    assert D(status["progress_frac"]) == 1
    assert D(start["max_drawdown_frac"]) >= D(start["drawdown_frac"])


def test_orders_are_counted_once_by_their_final_status(one_run: Any, home: str) -> None:
    start, _, report = one_run
    orders = list(csv.DictReader(io.StringIO(ok("export", "orders", "--data-dir", home).stdout)))
    assert sum(start["orders_by_status"].values()) == len(orders)
    assert start["orders_by_status"] == report["orders_by_status"]
    trades = list(csv.DictReader(io.StringIO(ok("export", "trades", "--data-dir", home).stdout)))
    assert start["fills"] == len(trades) > len(orders)  # partial fills: more fills than orders


def test_pnl_per_symbol_adds_up_to_the_run(one_run: Any, home: str) -> None:
    start, _, report = one_run
    per_symbol = start["pnl_by_symbol"]
    assert set(per_symbol) == {"ETHBTC", "LTCBTC", "DASHBTC"}
    for total, part in (
        ("realized_pnl", "realized_pnl"),
        ("unrealized_pnl", "unrealized_pnl"),
        ("fees", "fees"),
        ("total_pnl", "net_pnl"),
        ("fills", "fills"),
        ("round_trips", "round_trips"),
    ):
        assert sum(D(str(s[part])) for s in per_symbol.values()) == D(str(start[total])), total
    text = ok("report", "--data-dir", home).stdout
    assert "## PnL per symbol" in text and "| DASHBTC |" in text
    assert report["pnl_by_symbol"] == per_symbol


def test_round_trips_export_entry_exit_size_pnl_fees_and_duration(one_run: Any, home: str) -> None:
    start, _, _ = one_run
    rows = list(csv.DictReader(io.StringIO(ok("export", "round_trips", "--data-dir", home).stdout)))
    assert len(rows) == start["round_trips"]
    for row in rows:
        assert D(row["net_pnl"]) == D(row["realized_pnl"]) - D(row["fees"])
        assert int(row["duration_s"]) > 0 and D(row["qty"]) > 0
        assert row["exit_at"] > row["entry_at"] and row["direction"] == "long"
    closed = {s: f for s, f in start["pnl_by_symbol"].items() if s not in _open(start)}
    for symbol, figures in closed.items():
        net = sum(D(r["net_pnl"]) for r in rows if r["symbol"] == symbol)
        assert net == D(figures["net_pnl"]), symbol
    alerts = json.loads(ok("export", "alerts", "--json", "--data-dir", home).stdout)
    # The runbook's alarm rules speak on this run (three positions open is above two).
    assert len([a for a in alerts if a["status"] == "firing"]) == start["alerts"] > 0
    assert {a["rule"] for a in alerts} <= {
        "open_positions_high",
        "no_signals",
        "data_stop",
        "exposure_high",
        "daily_drawdown_high",
    }


def _open(summary: dict[str, Any]) -> set[str]:
    return {p["symbol"] for p in summary["open_positions"]}


def test_text_outputs_label_maximum_and_current_drawdown() -> None:
    start = ok(*replay(ETH, days="1")).stdout
    status = ok("papertest", "status").stdout
    report = ok("report").stdout
    for text in (start, status, report):
        assert "max drawdown" in text and "drawdown now" in text
    assert "orders by final status" in start and "orders by final status" in status
    assert "MomentumStrategy (engine.signal.momentum:MomentumStrategy)" in start
    assert "MAX_POSITION_PCT=0.1" in start and "Risk settings: MAX_POSITION_PCT=0.1" in report
    assert "PnL per symbol (BTC)" in start
