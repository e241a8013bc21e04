"""Fill realism: a run's fills re-derived from the market data the run itself recorded.

Nothing here reads the paper exchange's code paths; the audit starts again from the
candles, the orders and the fills, with the same published rules (the intra-bar
path of `engine.maths.path`, the half spread each fill records), and counts
every place where paper would have been kinder than an exchange:

- fills outside their bar's low-high range widened by the half spread they paid
  (onto the price grid);
- fills priced before their order arrived: met before `order.ts + latency`, at a
  middle other than the path's at the time met, or beyond the range the path covers
  after that time (widened by the half spread), for a resting fill a limit the path
  did not trade through after that time;
- taker fills that paid less than the half spread in force against the middle they
  met: the larger of the half spread the fill recorded and the one re-derived from
  the candles known before its bar (the published estimator of
  `engine.execution.spread`, or the fixed `SPREAD_BPS`), so a fill cannot hide a
  spread it was let off by recording less of it;
- resting (maker) fills that took more than the participation cap of the volume
  that traded beyond their limit while they rested;
- fills that grew a position while trading was halted (freeze violations);

and the signed cost (positive: worse for the trader) of taker fills by side and
timeframe, against the decision price and against the middle met, for first fills
and for all fills.

Pure functions over plain rows; `load_audit_input` reads the rows from the store.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from statistics import median
from typing import Any

from engine.events import Candle, Liquidity, Order, OrderResult, RiskEvent, Side, TradingState
from engine.execution.fills import BPS, cost_bps
from engine.execution.spread import SpreadEstimate, half_spread_bps
from engine.maths.path import bar_path, share_beyond
from engine.store import Store

ZERO = Decimal(0)
_BPS_PLACES = Decimal("0.01")
_SPREAD_PLACES = Decimal("0.0001")  # as fills record their half spread


@dataclass(frozen=True, slots=True)
class AuditOrder:
    order_id: str
    ts: datetime
    side: Side
    limit_price: Decimal | None
    decision_price: Decimal
    ttl_s: int


@dataclass(frozen=True, slots=True)
class AuditFill:
    fill_id: str
    order_id: str
    ts: datetime
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    requested_price: Decimal | None  # the middle met (a resting fill: its limit)
    spread_bps: Decimal
    liquidity: Liquidity
    market_event_id: str | None


@dataclass(frozen=True, slots=True)
class AuditInput:
    candles: dict[str, Candle]  # by event id
    orders: dict[str, AuditOrder]
    fills: list[AuditFill]  # in the order they happened
    states: list[tuple[datetime, TradingState]]  # trading-state changes, in time order
    latency_ms: int | None = None  # None when the run did not record it
    participation_cap: Decimal | None = None
    spread_window: int | None = None  # the candle spread estimator's window, when known
    fixed_spread_bps: Decimal | None = None  # SPREAD_BPS, when the run set it


@dataclass(frozen=True, slots=True)
class CostRow:
    """Signed costs in bps of one side on one timeframe (positive: worse for the trader)."""

    timeframe: str
    side: str
    fills: str  # "first" (each order's first fill) or "all"
    n: int
    mean_vs_decision: Decimal | None
    median_vs_decision: Decimal | None
    mean_vs_mid: Decimal | None
    median_vs_mid: Decimal | None


@dataclass(frozen=True, slots=True)
class FillAudit:
    fills: int
    taker_fills: int
    maker_fills: int
    outside_bar: int
    before_arrival: int
    under_half_spread: int
    maker_over_cap: int
    freeze_violations: int
    costs: list[CostRow] = field(default_factory=list)
    latency_ms: int | None = None
    participation_cap: Decimal | None = None

    @property
    def under_half_spread_share(self) -> Decimal:
        if not self.taker_fills:
            return ZERO
        return (Decimal(self.under_half_spread) / self.taker_fills).quantize(Decimal("0.0001"))

    @property
    def violations(self) -> int:
        return (
            self.outside_bar
            + self.before_arrival
            + self.under_half_spread
            + self.maker_over_cap
            + self.freeze_violations
        )

    @property
    def holds(self) -> bool:
        """Paper was nowhere kinder than the market, and first fills paid on average."""
        means = [c.mean_vs_decision for c in self.costs if c.fills == "first"]
        return self.violations == 0 and all(m is not None and m > 0 for m in means)

    def cost(self, timeframe: str, side: str, fills: str = "first") -> CostRow | None:
        for row in self.costs:
            if (row.timeframe, row.side, row.fills) == (timeframe, side, fills):
                return row
        return None

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["under_half_spread_share"] = self.under_half_spread_share
        body["violations"] = self.violations
        body["holds"] = self.holds
        return body


# --- inputs -------------------------------------------------------------------------


def input_from_events(
    events: list[Any],
    latency_ms: int | None,
    participation_cap: Decimal | None,
    spread_window: int | None = None,
    fixed_spread_bps: Decimal | None = None,
) -> AuditInput:
    """The audit's rows from a run's events, as seen by an observer of the pipeline."""
    candles: dict[str, Candle] = {}
    orders: dict[str, AuditOrder] = {}
    fills: list[AuditFill] = []
    states: list[tuple[datetime, TradingState]] = []
    for e in events:
        if isinstance(e, Candle):
            candles[e.event_id] = e
        elif isinstance(e, Order):
            orders[e.order_id] = AuditOrder(
                e.order_id, e.ts, e.side, e.limit_price, e.decision_price, e.ttl_s
            )
        elif isinstance(e, OrderResult) and e.status.is_fill:
            fills.append(
                AuditFill(
                    e.event_id,
                    e.order_id,
                    e.ts,
                    e.symbol,
                    e.side,
                    e.qty,
                    e.price,  # type: ignore[arg-type]
                    e.requested_price,
                    e.spread_bps,
                    e.liquidity or Liquidity.TAKER,
                    e.market_event_id,
                )
            )
        elif isinstance(e, RiskEvent) and e.kind == "state_change" and e.state is not None:
            states.append((e.ts, e.state))
    return AuditInput(
        candles, orders, fills, states, latency_ms, participation_cap, spread_window,
        fixed_spread_bps,
    )  # fmt: skip


def load_audit_input(store: Store, run_id: str) -> AuditInput:
    """The audit's rows from the run's own stored candles, orders, fills and risk events."""
    db, q, args = store.db, store.queries, {"run_id": run_id}
    candles = {
        r["event_id"]: Candle(
            r["event_id"],
            r["ts"],
            r["cause_id"],
            r["symbol"],
            r["open_time"],
            r["interval_s"],
            r["open"],
            r["high"],
            r["low"],
            r["close"],
            r["volume"],
        )
        for r in db.fetch_all(q["audit_candles"], args)
    }
    orders = {
        r["order_id"]: AuditOrder(
            r["order_id"],
            r["ts"],
            Side(r["side"]),
            r["price"],
            r["decision_price"],
            int(r["ttl_s"]),
        )
        for r in db.fetch_all(q["audit_orders"], args)
    }
    fills = [
        AuditFill(
            r["trade_id"],
            r["order_id"],
            r["ts"],
            r["symbol"],
            Side(r["side"]),
            r["qty"],
            r["price"],
            r["requested_price"],
            r["spread_bps"],
            Liquidity(r["liquidity"]),
            r["market_event_id"],
        )
        for r in db.fetch_all(q["audit_fills"], args)
    ]
    states = [
        (r["ts"], TradingState(r["state"])) for r in db.fetch_all(q["audit_state_changes"], args)
    ]
    run = store.get_run(run_id)
    settings: dict[str, Any] = {}
    if run is not None and isinstance(run.config, dict):
        settings = run.config.get("settings") or {}
    latency = settings.get("order_latency_ms")
    cap = settings.get("participation_cap_pct")
    window = settings.get("spread_window")
    fixed = settings.get("spread_bps")
    return AuditInput(
        candles,
        orders,
        fills,
        states,
        int(latency) if latency is not None else None,
        Decimal(str(cap)) if cap is not None else None,
        int(window) if window is not None else None,
        Decimal(str(fixed)) if fixed is not None else None,
    )


# --- the audit ------------------------------------------------------------------------


def price_steps(inp: AuditInput) -> dict[str, Decimal]:
    """Per symbol, the finest price step its recorded prices show (the grid fills are on)."""
    places: dict[str, int] = defaultdict(lambda: 2)
    for c in inp.candles.values():
        for p in (c.open, c.high, c.low, c.close):
            places[c.symbol] = max(places[c.symbol], _places(p))
    for f in inp.fills:
        places[f.symbol] = max(places[f.symbol], _places(f.price))
    return {s: Decimal(1).scaleb(-min(n, 15)) for s, n in places.items()}


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def widened_range(
    low: Decimal, high: Decimal, half_bps: Decimal, step: Decimal
) -> tuple[Decimal, Decimal]:
    """[low, high] widened by a half spread, outward onto the price grid."""
    lo = (low * (1 - half_bps / BPS) / step).to_integral_value(ROUND_FLOOR) * step
    hi = (high * (1 + half_bps / BPS) / step).to_integral_value(ROUND_CEILING) * step
    return lo, hi


def timeframe_of(candle: Candle | None) -> str:
    if candle is None:
        return "trades"
    s = candle.interval_s
    if s % 86400 == 0:
        return f"{s // 86400}d"
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def half_spreads_in_force(inp: AuditInput, wanted: set[str] | None = None) -> dict[str, Decimal]:
    """Per candle id, the half spread (bps) known before that candle: what a fill there pays.

    `wanted`: only these candles' (the ones fills met); the estimate still walks every bar.
    """
    if inp.fixed_spread_bps is not None:
        half = (inp.fixed_spread_bps / 2).quantize(_SPREAD_PLACES)
        return dict.fromkeys(inp.candles, half)
    if inp.spread_window is None:
        return {}
    estimates: dict[str, SpreadEstimate] = {}
    halves: dict[str, Decimal] = {}
    for c in sorted(inp.candles.values(), key=lambda c: (c.ts, c.symbol)):
        estimate = estimates.get(c.symbol)
        if estimate is None:
            estimate = estimates[c.symbol] = SpreadEstimate(inp.spread_window)
        if wanted is None or c.event_id in wanted:
            halves[c.event_id] = half_spread_bps(estimate.relative()).quantize(_SPREAD_PLACES)
        estimate.on_bar(c.high, c.low, c.close)
    return halves


def audit_fills(inp: AuditInput) -> FillAudit:
    steps = price_steps(inp)
    in_force = half_spreads_in_force(inp, {f.market_event_id or "" for f in inp.fills})
    latency = timedelta(milliseconds=inp.latency_ms) if inp.latency_ms is not None else None
    outside = before = under = over_cap = 0
    taker = maker = 0
    costs: dict[tuple[str, str, str], tuple[list[Decimal], list[Decimal]]] = defaultdict(
        lambda: ([], [])
    )
    seen_orders: set[str] = set()
    for f in inp.fills:
        order = inp.orders.get(f.order_id)
        if order is None:
            continue  # a liquidation: the exchange's fill, without an order of the run
        bar = inp.candles.get(f.market_event_id or "")
        step = steps[f.symbol]
        first = f.order_id not in seen_orders
        seen_orders.add(f.order_id)
        if latency is not None and f.ts < order.ts + latency:
            before += 1
        if f.liquidity is Liquidity.MAKER:
            maker += 1
            if bar is not None:
                before += _maker_before_arrival(f, bar)
                over_cap += _maker_over_cap(f, order, bar, inp.participation_cap)
                if not bar.low <= f.price <= bar.high:
                    outside += 1
            continue
        taker += 1
        half = max(f.spread_bps, in_force.get(f.market_event_id or "", ZERO))
        met = f.requested_price
        if met is not None and (cost_bps(f.side, met, f.price) < half or f.spread_bps < 0):
            under += 1
        if bar is not None:
            lo, hi = widened_range(bar.low, bar.high, half, step)
            if not lo <= f.price <= hi:
                outside += 1
            before += _taker_before_arrival(f, bar, step, half)
        tf = timeframe_of(bar)
        vs_decision = cost_bps(f.side, order.decision_price, f.price)
        vs_mid = cost_bps(f.side, f.requested_price or f.price, f.price)
        for which in ("first", "all") if first else ("all",):
            decision, mid = costs[(tf, f.side.value, which)]
            decision.append(vs_decision)
            mid.append(vs_mid)
    rows = [
        CostRow(
            tf,
            side,
            which,
            len(decision),
            _mean(decision),
            _median(decision),
            _mean(mid),
            _median(mid),
        )
        for (tf, side, which), (decision, mid) in sorted(costs.items())
    ]
    return FillAudit(
        fills=len([f for f in inp.fills if f.order_id in inp.orders]),
        taker_fills=taker,
        maker_fills=maker,
        outside_bar=outside,
        before_arrival=before,
        under_half_spread=under,
        maker_over_cap=over_cap,
        freeze_violations=freeze_violations(inp),
        costs=rows,
        latency_ms=inp.latency_ms,
        participation_cap=inp.participation_cap,
    )


def _taker_before_arrival(f: AuditFill, bar: Candle, step: Decimal, half: Decimal) -> int:
    """1 when the fill met a market or was limited by a price from before it was there."""
    if not bar.open_time <= f.ts <= bar.ts:
        return 1
    path = bar_path(bar)
    if f.requested_price is not None and f.requested_price != path.price_at(f.ts):
        return 1
    low, high = path.range_from(f.ts)
    lo, hi = widened_range(low, high, half, step)
    return 0 if lo <= f.price <= hi else 1


def _maker_before_arrival(f: AuditFill, bar: Candle) -> int:
    if not bar.open_time <= f.ts <= bar.ts:
        return 1
    low, high = bar_path(bar).range_from(f.ts)
    through = low < f.price if f.side is Side.BUY else high > f.price
    return 0 if through else 1


def volume_through(f: AuditFill, order: AuditOrder, bar: Candle) -> Decimal:
    """What traded beyond the limit from the fill's time to the bar's end or the order's end."""
    until = min(bar.ts, order.ts + timedelta(seconds=order.ttl_s))
    share = share_beyond(bar_path(bar), f.ts, until, f.price, f.side is Side.BUY)
    return bar.volume * share


def _maker_over_cap(f: AuditFill, order: AuditOrder, bar: Candle, cap: Decimal | None) -> int:
    if cap is None:
        return 0
    return 1 if f.qty > cap * volume_through(f, order, bar) else 0


def freeze_violations(inp: AuditInput) -> int:
    """Fills that grew a position while trading was halted.

    Trading halts at the end of a market time, once its candles are in: a fill in a
    candle that closes after the halt happened after it.
    """
    held: dict[str, Decimal] = defaultdict(Decimal)
    changes = sorted(inp.states)
    count = 0
    for f in inp.fills:
        before = held[f.symbol]
        held[f.symbol] += f.side.sign * f.qty
        bar = inp.candles.get(f.market_event_id or "")
        known_at = bar.ts if bar is not None else f.ts
        state = TradingState.ACTIVE
        for ts, s in changes:
            if ts >= known_at:
                break
            state = s
        if state is TradingState.HALTED and abs(held[f.symbol]) > abs(before):
            count += 1
    return count


def _mean(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    return (sum(values, ZERO) / len(values)).quantize(_BPS_PLACES)


def _median(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    return Decimal(median(values)).quantize(_BPS_PLACES)
