"""What a live run in the foreground shows: a status table, not a blank screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console

from claire_cli.render import _LiveStatus
from engine.config import load_settings
from engine.kernel.pipeline import run_replay
from engine.kernel.progress import ProgressView


def test_the_live_status_names_market_time_positions_and_freshness() -> None:
    status = _LiveStatus()
    console = Console(record=True, width=100, color_system=None)
    console.print(status)
    assert "connecting to the exchange" in console.export_text()
    now = datetime.now(UTC)
    status.update(
        ProgressView(
            market_time=now - timedelta(seconds=2),
            done_frac=0.25,
            equity=Decimal("1001.5"),
            total_pnl=Decimal("1.5"),
            fills=7,
            trading_state="active",
            quote_currency="USDT",
            last_events=(("BTCUSDT", now - timedelta(seconds=3)), ("ETHUSDT", now)),
            open_positions=2,
            exposure_frac=Decimal("0.125"),
            daily_drawdown_frac=Decimal("0.01"),
        )
    )
    console.print(status)
    text = console.export_text()
    assert "Live paper run" in text and "25.0 % of the run" in text
    assert "1,001.500000 USDT" in text and "12.50 %" in text and "1.00 %" in text
    assert "BTCUSDT 3 s" in text and "ETHUSDT 0 s" in text


def test_progress_views_carry_what_the_status_shows(four_symbols: list[Path]) -> None:
    views: list[ProgressView] = []
    summary, _ = run_replay(
        load_settings(initial_capital="10"), four_symbols, days=1, progress=views.append
    )
    last = views[-1]
    assert [s for s, _ in last.last_events] == ["ADABTC", "DASHBTC", "ETHBTC", "LTCBTC"]
    assert all(ts == summary.market_end for _, ts in last.last_events)
    assert last.open_positions == len(summary.open_positions)
    assert last.exposure_frac == summary.exposure_frac
    assert last.daily_drawdown_frac == summary.daily_drawdown_frac
