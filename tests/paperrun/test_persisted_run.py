"""Paper runs with every event in a real embedded PostgreSQL, end to end through the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
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
from typer.testing import CliRunner

from claire_cli.main import app
from engine.config import load_settings
from engine.kernel.pipeline import run_replay
from engine.report.export import COLUMNS
from engine.runtime.postgres import attach_url

pytestmark = pytest.mark.integration
runner = CliRunner()
D = Decimal


def claire(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def replay_args(files: list[Path], *extra: str) -> list[str]:
    args = ["papertest", "start", "--days", "7", "--capital", "10", *extra]
    for path in files:
        args += ["--replay", str(path)]
    return args


@pytest.fixture(scope="module")
def expected(four_symbols: list[Path]) -> Any:
    summary, _ = run_replay(load_settings(initial_capital="10"), four_symbols, days=7)
    return summary


def test_persisted_run_reports_what_the_in_memory_run_computes(
    four_symbols: list[Path], expected: Any, claire_home: Path
) -> None:
    out = json.loads(claire(*replay_args(four_symbols, "--json")).output)
    assert out["status"] == "completed" and out["data_dir"] == str(claire_home)
    assert D(out["equity"]) == expected.equity

    report = json.loads(claire("report", "--final", "--format", "json").output)
    assert report["run_id"] == out["run_id"]
    assert D(report["equity"]) == expected.equity
    assert D(report["realized_pnl"]) == expected.realized_pnl
    assert D(report["unrealized_pnl"]) == expected.unrealized_pnl
    assert D(report["fees"]) == expected.fees
    assert report["fills"] == expected.fills
    assert report["round_trips"] == expected.round_trips
    assert D(report["win_rate_frac"]) == D(expected.wins) / expected.round_trips
    assert D(report["max_drawdown_frac"]) == expected.max_drawdown_frac
    assert D(report["max_exposure_frac"]) == expected.max_exposure_frac
    assert report["risk_refusals"] == expected.risk_refusals
    assert [p["symbol"] for p in report["open_positions"]] == [
        p["symbol"] for p in expected.open_positions
    ]
    for key in ("initial_capital", "total_pnl", "avg_win", "avg_loss", "profit_factor"):
        assert key in report
    markdown = claire("report", "--final").output
    assert "| equity |" in markdown and out["run_id"] in markdown


def test_exported_fills_reproduce_the_final_equity(four_symbols: list[Path]) -> None:
    claire(*replay_args(four_symbols, "--json"))
    report = json.loads(claire("report", "--final", "--format", "json").output)
    text = claire("export", "trades", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == report["fills"] > 0
    for column in (
        "trade_id",
        "order_id",
        "ts",
        "symbol",
        "side",
        "qty",
        "price",
        "fee",
        "slippage_bps",
        "liquidity",
    ):
        assert column in rows[0]
    # Independently of the portfolio code: cash moves by each fill, positions by its size.
    cash = D(report["initial_capital"])
    held: dict[str, D] = {}
    for row in rows:
        qty, price, fee = D(row["qty"]), D(row["price"]), D(row["fee"])
        sign = 1 if row["side"] == "buy" else -1
        cash -= sign * qty * price + fee
        held[row["symbol"]] = held.get(row["symbol"], D(0)) + sign * qty
    marks = {p["symbol"]: D(p["mark_price"]) for p in report["open_positions"]}
    assert {s for s, q in held.items() if q} == set(marks)
    equity = cash + sum((q * marks[s] for s, q in held.items() if q), D(0))
    assert equity == D(report["equity"])


def test_every_export_has_its_promised_columns(
    four_symbols: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tight daily limit, so the run also has trading-state changes and alerts to export,
    # and the first file with one impossible row in its window, so every table has rows.
    monkeypatch.setenv("MAX_DAILY_DRAWDOWN_PCT", "0.005")
    with_bad_row = tmp_path / "data" / four_symbols[0].name
    with_bad_row.parent.mkdir()
    lines = four_symbols[0].read_text().splitlines(keepends=True)
    with_bad_row.write_text("".join([*lines[:100], "1515590100000,1,1,1,1,1e999\n", *lines[100:]]))
    claire(*replay_args([with_bad_row, *four_symbols[1:]], "--json"))
    for kind, columns in COLUMNS.items():
        if kind in ("funding", "liquidations"):
            continue  # perpetuals only: the futures replay test exports them
        target = tmp_path / f"{kind}.json"
        claire("export", kind, "--format", "json", "--out", str(target))
        rows = json.loads(target.read_text())
        assert rows, kind
        assert list(rows[0]) == list(columns), kind
    orders = json.loads((tmp_path / "orders.json").read_text())
    assert all(o["price"] is None for o in orders if o["order_type"] == "market")


def test_secrets_never_reach_the_stored_config(
    four_symbols: list[Path], monkeypatch: pytest.MonkeyPatch, claire_home: Path
) -> None:
    monkeypatch.setenv("MEXC_API_KEY", "very-secret-key")  # a key goes with its secret
    monkeypatch.setenv("MEXC_API_SECRET", "very-secret-value")
    out = json.loads(claire(*replay_args(four_symbols[:1], "--json")).output)
    url = attach_url(claire_home)
    assert url is None  # nothing runs now; start the server to look inside
    from engine.home.database import open_store

    with open_store(load_settings(), claire_home) as (store, database):
        run = store.get_run(out["run_id"])
        assert run is not None
        assert "very-secret-value" not in json.dumps(run.config)
        assert "very-secret-key" not in json.dumps(run.config)
        assert run.config["settings"]["mexc_api_secret"] == "**********"
        assert "***" in database


def test_a_data_folder_that_does_not_exist_yet_is_created(
    four_symbols: list[Path], claire_home: Path
) -> None:
    folder = claire_home / "new" / "place"
    out = json.loads(
        claire(*replay_args(four_symbols[:1], "--json", "--data-dir", str(folder))).output
    )
    assert out["status"] == "completed" and out["data_dir"] == str(folder)
    assert (folder / "postgres").is_dir()


def test_resume_without_an_interrupted_run_is_a_clear_error(four_symbols: list[Path]) -> None:
    claire(*replay_args(four_symbols[:1], "--json"))  # completed: nothing to resume
    result = runner.invoke(app, ["papertest", "start", "--resume"])
    assert result.exit_code == 1
    assert "no interrupted run" in result.output


def _checkpointed_events(home: Path) -> int:
    url = attach_url(home)
    if url is None:
        return 0
    try:
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=2) as conn:
            row = conn.execute("SELECT max(market_events) AS n FROM run_checkpoints").fetchone()
    except psycopg.Error:
        return 0
    return int(row["n"] or 0) if row else 0


def _fills(home: Path, run_id: str) -> list[tuple[Any, ...]]:
    from engine.home.database import open_store

    with open_store(load_settings(), home) as (store, _):
        rows = store.db.fetch_all(
            "SELECT trade_id, order_id, ts, symbol, side, qty, price, fee, slippage_bps "
            "FROM trades WHERE run_id = %(run_id)s ORDER BY ts, trade_id",
            {"run_id": run_id},
        )
    return [tuple(r.values()) for r in rows]


def test_kill_9_mid_run_then_resume_gives_the_fills_of_an_unbroken_run(
    four_symbols: list[Path], claire_home: Path, expected: Any
) -> None:
    # Paced so the run is still going when it is killed: 7 days in about 12 s.
    args = [
        sys.executable,
        "-m",
        "claire_cli.main",
        *replay_args(four_symbols, "--json"),
        "--speed",
        "50000x",
    ]
    child = subprocess.Popen(
        args, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while _checkpointed_events(claire_home) < 2000:
            assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never checkpointed"
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    status = json.loads(claire("papertest", "status", "--json").output)
    [interrupted] = status
    assert interrupted["status"] == "interrupted"
    assert 0 < D(interrupted["progress_frac"]) < 1

    resumed = json.loads(claire("papertest", "start", "--resume", "--json").output)
    assert resumed["run_id"] == interrupted["run_id"]
    assert resumed["status"] == "completed"
    assert resumed["resumed_after_events"] >= 2000
    assert D(resumed["equity"]) == expected.equity

    unbroken = json.loads(claire(*replay_args(four_symbols, "--json")).output)
    assert unbroken["run_id"] != resumed["run_id"]
    assert _fills(claire_home, resumed["run_id"]) == _fills(claire_home, unbroken["run_id"])
    assert len(_fills(claire_home, resumed["run_id"])) == expected.fills
    final = json.loads(claire("papertest", "status", "--json", "--run", resumed["run_id"]).output)
    assert final[0]["status"] == "completed"


def test_a_limit_order_strategy_is_stored_with_its_prices(four_symbols: list[Path]) -> None:
    strategy = "engine.signal.pullback:PullbackLimitStrategy"
    out = json.loads(claire(*replay_args(four_symbols, "--json", "--strategy", strategy)).output)
    assert out["status"] == "completed"
    orders = {
        o["order_id"]: o for o in json.loads(claire("export", "orders", "--format", "json").output)
    }
    limits = [o for o in orders.values() if o["order_type"] == "limit"]
    assert limits and all(D(o["price"]) > 0 and o["post_only"] is True for o in limits)
    trades = json.loads(claire("export", "trades", "--format", "json").output)
    maker = [t for t in trades if t["liquidity"] == "maker"]
    assert maker
    for trade in maker:  # a resting limit fills at exactly its price, never better
        assert D(trade["price"]) == D(orders[trade["order_id"]]["price"])
        assert D(trade["spread_bps"]) == 0 and D(trade["fee"]) == 0
    signals = json.loads(claire("export", "signals", "--format", "json").output)
    assert {s["order_type"] for s in signals} == {"limit", "market"}
