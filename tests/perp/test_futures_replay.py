"""Replays of the shipped XRP_USDT perpetual: both sides, funding, liquidation, resume."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claire_cli.main import app
from engine.config import load_settings
from engine.events import (
    Candle,
    Event,
    FundingPayment,
    FundingSettlement,
    Liquidation,
    MarkPrice,
    OrderResult,
    RiskEvent,
    Side,
)
from engine.feeds.replay import PerpetualFiles
from engine.home.database import open_store
from engine.kernel.pipeline import run_replay
from engine.perp.margin import funding_fee, liquidation_price, position_margin
from engine.signal.base import Intent, Strategy, StrategyContext
from tests.conftest import MARKET
from tests.paperrun.runs import claire_process, wait_for_checkpoint

D = Decimal
FUTURES = MARKET / "futures"
CANDLES = FUTURES / "XRP_USDT-1h.csv"
runner = CliRunner()


class ShortBiased(Strategy):
    """Short for 14 bars, long for 6, with a bar flat between: both sides, mostly short."""

    name = "short-biased"

    def __init__(self) -> None:
        self.bars = 0

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        self.bars += 1
        phase = self.bars % 22
        held = context.position(candle.symbol)
        qty = held.qty if held is not None else D(0)
        if phase == 1 and qty == 0:
            return (Intent(candle.symbol, "sell", 1, "short"),)
        if phase == 15 and qty < 0:
            return (Intent(candle.symbol, "buy", 1, "cover"),)
        if phase == 16 and qty == 0:
            return (Intent(candle.symbol, "buy", 1, "long"),)
        if phase == 0 and qty > 0:
            return (Intent(candle.symbol, "sell", 1, "close"),)
        return ()

    def export_state(self) -> dict[str, int]:
        return {"bars": self.bars}

    def import_state(self, state: dict[str, int]) -> None:
        self.bars = state["bars"]


def replay(files: list[Path], perpetual: PerpetualFiles, **settings: str) -> list[Event]:
    seen: list[Event] = []
    config = load_settings(
        **({"leverage": "5", "stale_data_seconds": "7200", "position_size_pct": "0.1"} | settings)
    )
    run_replay(config, files, strategy=ShortBiased(), observers=[seen.append], perpetual=perpetual)
    return seen


def of(seen: list[Event], kind: type) -> list:
    return [e for e in seen if isinstance(e, kind)]


def test_the_shipped_perpetual_trades_both_sides_and_settles_funding_every_8_hours() -> None:
    seen = replay([CANDLES], PerpetualFiles())
    fills = [r for r in of(seen, OrderResult) if r.status.is_fill]
    assert {f.side for f in fills} == {Side.BUY, Side.SELL}
    # Held quantity over time, from the fills alone.
    changes = sorted((f.ts, f.side.sign * f.qty) for f in fills)
    settlements = of(seen, FundingSettlement)
    assert settlements and all(s.ts.hour % 8 == 0 and s.ts.minute == 0 for s in settlements)
    assert [s.ts for s in settlements] == sorted({s.ts for s in settlements})
    marks: dict[datetime, D] = {}
    last_mark: D | None = None
    last_close: D | None = None
    for event in seen:  # the fair price at each settlement, as it stood then
        if isinstance(event, MarkPrice):
            last_mark = event.price
        elif isinstance(event, Candle):
            last_close = event.close
        elif isinstance(event, FundingSettlement):
            marks[event.ts] = last_mark if last_mark is not None else last_close  # type: ignore[assignment]
    payments = {p.ts: p for p in of(seen, FundingPayment)}
    recorded = {
        datetime.fromtimestamp(int(line.split(",")[0]) // 1000, UTC).replace(second=0): D(
            line.split(",")[1]
        )
        for line in (FUTURES / "XRP_USDT-8h-funding.csv").read_text().splitlines()[1:]
    }
    for settlement in settlements:
        held = sum((q for t, q in changes if t <= settlement.ts), D(0))
        rate = recorded.get(settlement.ts, D("0.0001"))
        assert settlement.rate == rate
        if held == 0:
            assert settlement.ts not in payments
            continue
        payment = payments[settlement.ts]
        assert payment.qty == held and payment.fair_price == marks[settlement.ts]
        assert payment.amount == funding_fee(held, marks[settlement.ts], rate)
    amounts = [p.amount for p in payments.values()]
    assert any(a > 0 for a in amounts) and any(a < 0 for a in amounts)  # paid and received

    final = [e for e in seen if hasattr(e, "equity")][-1]
    wallet = D(100000) + final.realized_pnl - final.fees + final.funding
    assert final.cash == wallet
    assert final.equity == wallet + final.unrealized_pnl
    assert final.funding == -sum(amounts)


def _crafted(folder: Path) -> list[Path]:
    """Two days of hourly XRP bars near 1.08, then a fall through a 20x long's liquidation."""
    start = datetime(2021, 11, 17, tzinfo=UTC)
    rows, marks = ["open_time,open,high,low,close,volume"], ["open_time,open,high,low,close,volume"]
    for n in range(48):
        t = int((start + timedelta(hours=n)).timestamp() * 1000)
        price = "1.08" if n < 40 else "1.00"
        low = "1.00" if n == 40 else price
        rows.append(f"{t},{'1.08' if n <= 40 else price},1.08,{low},{price},3000000")
    for n in range(6):
        t = int((start + timedelta(hours=8 * n)).timestamp() * 1000)
        o, c = ("1.08", "1.08") if n < 5 else ("1.08", "1.00")
        marks.append(f"{t},{o},1.08,{c},{c},100")
    (folder / "XRP_USDT-1h.csv").write_text("\n".join(rows) + "\n")
    (folder / "XRP_USDT-8h-mark.csv").write_text("\n".join(marks) + "\n")
    return [folder / "XRP_USDT-1h.csv"]


class BuyOnce(Strategy):
    def __init__(self) -> None:
        self.done = False

    def on_candle(self, candle: Candle, context: StrategyContext) -> Iterable[Intent]:
        if self.done:
            return ()
        self.done = True
        return (Intent(candle.symbol, "buy", 1, "long"),)


def test_a_replay_crossing_the_liquidation_price_liquidates_at_the_formulas_price(
    tmp_path: Path,
) -> None:
    files = _crafted(tmp_path)
    seen: list[Event] = []
    settings = load_settings(
        leverage="20",
        max_leverage="20",
        stale_data_seconds="7200",
        min_liquidation_distance_pct="0.01",
        initial_capital="10000",
    )
    run_replay(
        settings, files, strategy=BuyOnce(), observers=[seen.append], perpetual=PerpetualFiles()
    )
    [entry] = [r for r in of(seen, OrderResult) if r.status.is_fill and r.side is Side.BUY]
    [liq] = of(seen, Liquidation)
    margin = position_margin(entry.qty * entry.price, D(20))
    level = liquidation_price(
        Side.BUY, entry.price, entry.qty, margin, settings.maintenance_margin_rate
    )
    assert (
        level - D("0.01") < liq.liquidation_price <= level
    )  # on the tick grid, against the trader
    assert liq.margin_lost == margin
    # The mark path of the last 8-hour bar falls from 1.08 (at 16:00 of day 2) to 1.00.
    assert liq.ts > datetime(2021, 11, 18, 16, tzinfo=UTC)
    [close] = [r for r in of(seen, OrderResult) if r.order_id == liq.order_id]
    assert close.price == liq.liquidation_price and close.qty == entry.qty
    final = [e for e in seen if hasattr(e, "equity")][-1]
    assert final.positions == ()
    funding = sum((p.amount for p in of(seen, FundingPayment)), D(0))
    assert funding > 0  # the long paid at the default rate before it was liquidated
    assert final.cash == D(10000) - margin - entry.fee - funding  # the margin, nothing more
    assert [e.kind for e in of(seen, RiskEvent)] == ["liquidation"]


def test_a_futures_run_killed_and_resumed_keeps_its_fills_and_funding(claire_home: Path) -> None:
    args = [
        "papertest", "start", "--replay", str(CANDLES), "--market", "futures",
        "--strategy", "engine.signal.momentum:MomentumStrategy", "--param", "allow_short=true",
        "--param", "lookback_bars=6", "--param", "trend_bars=12", "--param", "entry_return=0.004",
        "--json",
    ]  # fmt: skip
    env = {"LEVERAGE": "5"}
    child = claire_process([*args, "--speed", "60000x"], env)
    try:
        wait_for_checkpoint(child, claire_home, 60)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    resumed = runner.invoke(app, ["papertest", "start", "--resume", "--json"], env=env)
    assert resumed.exit_code == 0, resumed.output
    resumed_run = json.loads(resumed.output)["run_id"]
    unbroken = runner.invoke(app, args, env=env)
    assert unbroken.exit_code == 0, unbroken.output
    unbroken_run = json.loads(unbroken.output)["run_id"]

    def rows(table: str, columns: str, run_id: str) -> list[tuple]:
        with open_store(load_settings(), claire_home) as (store, _):
            found = store.db.fetch_all(
                f"SELECT {columns} FROM {table} WHERE run_id = %(run)s ORDER BY ts, {columns}",
                {"run": run_id},
            )
        return [tuple(r.values()) for r in found]

    fills = "trade_id, ts, side, qty, price, fee"
    funding = "event_id, ts, qty, fair_price, rate, amount"
    assert rows("trades", fills, resumed_run) == rows("trades", fills, unbroken_run)
    assert rows("funding_payments", funding, resumed_run) == rows(
        "funding_payments", funding, unbroken_run
    )
    assert rows("funding_payments", funding, unbroken_run)
    exported = runner.invoke(app, ["export", "funding", "--run", unbroken_run, "--json"])
    assert len(json.loads(exported.output)) == len(rows("funding_payments", funding, unbroken_run))


@pytest.mark.parametrize("bad", ["1637193600017,NaN", "abc,0.0001", "1637193600017,2", "-5,0.01"])
def test_bad_funding_rows_are_refused_one_by_one(tmp_path: Path, bad: str) -> None:
    lines = (FUTURES / "XRP_USDT-8h-funding.csv").read_text().splitlines()
    (tmp_path / "XRP_USDT-1h.csv").write_text(CANDLES.read_text())
    (tmp_path / "XRP_USDT-8h-funding.csv").write_text(
        "\n".join([*lines[:3], bad, *lines[3:]]) + "\n"
    )
    seen: list[Event] = []
    summary, _ = run_replay(
        load_settings(stale_data_seconds="7200"),
        [tmp_path / "XRP_USDT-1h.csv"],
        strategy=ShortBiased(),
        observers=[seen.append],
        perpetual=PerpetualFiles(),
    )
    assert summary.rejected_input == 1
    assert of(seen, FundingSettlement)
