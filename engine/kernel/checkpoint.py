"""The whole in-memory state of a pipeline as plain JSON, and back.

A checkpoint is taken between two market events, when every effect of the last
one has been delivered, and is stored in the same transaction as the events it
follows. Resuming from it and continuing with the next market event gives the
same fills as a run that never stopped. Decimals travel as strings, times as
ISO 8601, orders as their event JSON.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Collection
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from weakref import WeakKeyDictionary

from engine.events import (
    Order,
    Quote,
    RiskEvent,
    TradingState,
    from_dict,
    position_from_dict,
    position_to_dict,
    to_dict,
)
from engine.execution.service import WorkingOrder
from engine.execution.spread import SpreadEstimate
from engine.maths.accounting import Position
from engine.maths.round_trips import SymbolBook
from engine.portfolio.service import Portfolio, RoundTrip, _Open
from engine.risk.service import InFlight
from engine.signal.loader import strategy_state

if TYPE_CHECKING:
    from engine.kernel.pipeline import Pipeline

FORMAT = 2


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _decimals(values: dict[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def _from_decimals(values: dict[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}


def _order(body: dict[str, Any]) -> Order:
    order = from_dict(body)
    assert isinstance(order, Order)
    return order


def capture(pipeline: Pipeline, parts: Collection[str] | None = None) -> dict[str, Any]:
    """The pipeline's state as JSON values; `parts` picks some of the services (a service
    process keeps only its own)."""
    builders: dict[str, Any] = {
        "format": FORMAT,
        "clock": _t(pipeline.clock.now()),
        "portfolio": lambda: _capture_portfolio(pipeline),
        "risk": lambda: _capture_risk(pipeline),
        "exchange": lambda: _capture_exchange(pipeline),
        "signals": lambda: {
            "positions": [position_to_dict(v) for v in pipeline.signals._positions.values()],
            "strategy": strategy_state(pipeline.strategy),
        },
        "alerts": lambda: pipeline.alerts.export_state(),
        "stats": lambda: _capture_stats(pipeline),
    }
    return {
        key: value() if callable(value) else value
        for key, value in builders.items()
        if parts is None or key in parts or key in ("format", "clock")
    }


# A portfolio's round trips as rows, kept between captures: a closed round trip never
# changes and the list only grows, so each capture encodes just the new ones (a service
# process captures its state at every market time, a long run holds thousands of them).
_TRIP_ROWS: WeakKeyDictionary[Portfolio, tuple[list[RoundTrip], list[list[str | None]]]] = (
    WeakKeyDictionary()
)


def _trip_rows(p: Portfolio) -> list[list[str | None]]:
    trips = p.round_trips
    memo = _TRIP_ROWS.get(p)
    if memo is None or memo[0] is not trips or len(memo[1]) > len(trips):
        memo = _TRIP_ROWS[p] = (trips, [])  # a restored or replaced list starts again
    rows = memo[1]
    for t in trips[len(rows) :]:
        rows.append(
            [t.symbol, _t(t.opened_at), _t(t.closed_at), str(t.realized_pnl), str(t.fees),
             str(t.funding)]
        )  # fmt: skip
    return list(rows)  # a copy: the memo goes on growing after this capture


def _capture_portfolio(pipeline: Pipeline) -> dict[str, Any]:
    p = pipeline.portfolio
    return {
        "cash": str(p.cash),
        "fees": str(p.fees),
        "realized": str(p.realized),
        "positions": {
            s: [str(pos.qty), str(pos.cost), str(pos.realized)] for s, pos in p.positions.items()
        },
        "marks": _decimals(p.marks),
        "peak_equity": str(p.peak_equity),
        "day_start_equity": str(p.day_start_equity),
        "max_drawdown_pct": str(p.max_drawdown_pct),
        "max_exposure_pct": str(p.max_exposure_pct),
        "round_trips": _trip_rows(p),
        "fills": p.fills,
        "open": {
            s: [_t(o.opened_at), str(o.realized), str(o.fees), str(o.funding)]
            for s, o in p._open.items()
        },
        "funding": str(p.funding),
        "max_margin_frac": str(p.max_margin_frac),
        "liquidations": p.liquidations,
        "mark_fed": sorted(p._mark_fed),
        "next_day": _t(p._next_day),
        "next_minute": _t(p._next_minute),
        "dirty": p._dirty,
        "last_equity": str(p._last_equity),
    }


def _capture_risk(pipeline: Pipeline) -> dict[str, Any]:
    r = pipeline.risk
    return {
        "state": r.state.value,
        "reducing_since": r.reducing_since.isoformat() if r.reducing_since else None,
        "cash": str(r.cash),
        "positions": _decimals(r.positions),
        "costs": _decimals(r.costs),
        "margin_used": str(r.margin_used),
        "fair": _decimals(r.fair),
        "day_start_equity": str(r.day_start_equity),
        "breaker_peak": str(r.breaker_peak),
        "last_price": _decimals(r.last_price),
        "last_seen": {s: _t(t) for s, t in r.last_seen.items()},
        "in_flight": [[to_dict(f.order), str(f.remaining)] for f in r.in_flight.values()],
        "recent_orders": [_t(t) for t in r.recent_orders],
        "closes": {s: list(c) for s, c in r._closes.items()},
        "bars_per_day": r._bars_per_day,
    }


def _capture_exchange(pipeline: Pipeline) -> dict[str, Any]:
    x = pipeline.exchange
    return {
        "cash": str(x.account.cash),
        "holdings": _decimals(x.account.holdings),
        "working": [
            [
                to_dict(w.order),
                _t(w.active_at),
                _t(w.expires_at),
                str(w.remaining),
                w.bars_seen,
                w.fills,
            ]
            for w in x.working.values()
        ],
        "used_volume": [x._used_volume[0], str(x._used_volume[1])],
        "spreads": {sym: est.export() for sym, est in x.spreads.items()},
        "quotes": [to_dict(q) for q in x.quotes.values()],
        "perps": {
            "positions": {
                s: [str(pos.qty), str(pos.cost), str(pos.realized)]
                for s, pos in x.perps.positions.items()
            },
            "opened_at": {s: _t(t) for s, t in x.perps.opened_at.items()},
            "fair": _decimals(x.perps.fair),
            "marked_at": {s: _t(t) for s, t in x.perps.marked_at.items()},
            "mark_fed": sorted(x.perps.mark_fed),
        },
    }


def _capture_stats(pipeline: Pipeline) -> dict[str, Any]:
    st = pipeline.stats
    return {
        "fills": st.fills,
        "fills_by_symbol": dict(st.fills_by_symbol),
        "results_by_status": dict(st.results_by_status),
        "refusals_by_reason": dict(st.refusals_by_reason),
        "resizes_by_reason": dict(st.resizes_by_reason),
        "state_changes": [to_dict(e) for e in st.state_changes],
        "alerts": st.alerts,
        "market_events": st.market_events,
        "funding_payments": st.funding_payments,
        "liquidations": st.liquidations,
        "books": {symbol: book.to_json() for symbol, book in st.books.items()},
    }


def restore(pipeline: Pipeline, state: dict[str, Any]) -> None:
    """Put a freshly built pipeline back into the state `capture` recorded."""
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} is not {FORMAT}")
    clock = _pt(state["clock"])
    if clock is not None:
        pipeline.clock.advance(clock)

    if "portfolio" in state:
        _restore_portfolio(pipeline, state["portfolio"])
    if "risk" in state:
        _restore_risk(pipeline, state["risk"])
    if "exchange" in state:
        _restore_exchange(pipeline, state["exchange"])
    if "signals" in state:
        ss = state["signals"]
        pipeline.signals._positions = {v["symbol"]: position_from_dict(v) for v in ss["positions"]}
        pipeline.strategy.import_state(ss["strategy"])
    if "alerts" in state:  # checkpoints from before the alerts service have none
        pipeline.alerts.import_state(state["alerts"])
    if "stats" in state:
        _restore_stats(pipeline, state["stats"])


def _restore_portfolio(pipeline: Pipeline, ps: dict[str, Any]) -> None:
    p = pipeline.portfolio
    p.cash, p.fees, p.realized = Decimal(ps["cash"]), Decimal(ps["fees"]), Decimal(ps["realized"])
    p.positions = {
        s: Position(Decimal(q), Decimal(c), Decimal(r)) for s, (q, c, r) in ps["positions"].items()
    }
    p.marks = _from_decimals(ps["marks"])
    p.peak_equity = Decimal(ps["peak_equity"])
    p.day_start_equity = Decimal(ps["day_start_equity"])
    p.max_drawdown_pct = Decimal(ps["max_drawdown_pct"])
    p.max_exposure_pct = Decimal(ps["max_exposure_pct"])
    p.round_trips = [
        RoundTrip(s, _pt(o), _pt(c), Decimal(r), Decimal(f), Decimal(fu))  # type: ignore[arg-type]
        for s, o, c, r, f, fu in ps["round_trips"]
    ]
    p.fills = ps["fills"]
    p._open = {
        s: _Open(_pt(o), Decimal(r), Decimal(f), Decimal(fu))  # type: ignore[arg-type]
        for s, (o, r, f, fu) in ps["open"].items()
    }
    p.funding, p.liquidations = Decimal(ps["funding"]), ps["liquidations"]
    p.max_margin_frac = Decimal(ps["max_margin_frac"])
    p._mark_fed = set(ps["mark_fed"])
    p._next_day, p._next_minute = _pt(ps["next_day"]), _pt(ps["next_minute"])
    p._dirty, p._last_equity = ps["dirty"], Decimal(ps["last_equity"])


def _restore_risk(pipeline: Pipeline, rs: dict[str, Any]) -> None:
    r = pipeline.risk
    r.state = TradingState(rs["state"])
    r.reducing_since = date.fromisoformat(rs["reducing_since"]) if rs["reducing_since"] else None
    r.cash = Decimal(rs["cash"])
    r.positions = _from_decimals(rs["positions"])
    r.costs = _from_decimals(rs["costs"])
    r.margin_used = Decimal(rs["margin_used"])
    r.fair = _from_decimals(rs["fair"])
    r.day_start_equity = Decimal(rs["day_start_equity"])
    r.breaker_peak = Decimal(rs["breaker_peak"])
    r.last_price = _from_decimals(rs["last_price"])
    r.last_seen = {s: _pt(t) for s, t in rs["last_seen"].items()}  # type: ignore[misc]
    r.in_flight = {}
    for body, remaining in rs["in_flight"]:
        order = _order(body)
        r.in_flight[order.order_id] = InFlight(order, Decimal(remaining))
    r.recent_orders = deque(_pt(t) for t in rs["recent_orders"])  # type: ignore[misc]
    lookback = pipeline.settings.volatility_lookback_bars + 1
    r._closes = {s: deque(c, maxlen=lookback) for s, c in rs["closes"].items()}
    r._bars_per_day = dict(rs["bars_per_day"])


def _restore_exchange(pipeline: Pipeline, xs: dict[str, Any]) -> None:
    x = pipeline.exchange
    x.account.cash = Decimal(xs["cash"])
    x.account.holdings = _from_decimals(xs["holdings"])
    x.working = {}
    for body, active_at, expires_at, remaining, bars_seen, fills in xs["working"]:
        order = _order(body)
        x.working[order.order_id] = WorkingOrder(
            order,
            cast(datetime, _pt(active_at)),
            cast(datetime, _pt(expires_at)),
            Decimal(remaining),
            bars_seen,
            fills,
        )
    x._used_volume = (xs["used_volume"][0], Decimal(xs["used_volume"][1]))
    window = pipeline.settings.spread_window
    x.spreads = {sym: SpreadEstimate.restore(window, st) for sym, st in xs["spreads"].items()}
    perps = xs["perps"]
    x.perps.positions = {
        s: Position(Decimal(q), Decimal(c), Decimal(r))
        for s, (q, c, r) in perps["positions"].items()
    }
    x.perps.opened_at = {s: _pt(t) for s, t in perps["opened_at"].items()}  # type: ignore[misc]
    x.perps.fair = _from_decimals(perps["fair"])
    marked_at = perps.get("marked_at", {})  # absent from checkpoints of older versions
    x.perps.marked_at = {s: _pt(t) for s, t in marked_at.items()}  # type: ignore[misc]
    x.perps.mark_fed = set(perps["mark_fed"])
    x.quotes = {}
    for body in xs["quotes"]:
        quote = from_dict(body)
        assert isinstance(quote, Quote)
        x.quotes[quote.symbol] = quote


def _restore_stats(pipeline: Pipeline, sts: dict[str, Any]) -> None:
    st = pipeline.stats
    st.fills = sts["fills"]
    st.fills_by_symbol = Counter(sts["fills_by_symbol"])
    st.results_by_status = Counter(sts["results_by_status"])
    st.refusals_by_reason = Counter(sts["refusals_by_reason"])
    st.resizes_by_reason = Counter(sts["resizes_by_reason"])
    st.state_changes = [e for e in map(from_dict, sts["state_changes"]) if isinstance(e, RiskEvent)]
    st.alerts = sts["alerts"]
    st.market_events = sts["market_events"]
    st.funding_payments = sts["funding_payments"]
    st.liquidations = sts["liquidations"]
    st.books = {s: SymbolBook.from_json(b) for s, b in sts.get("books", {}).items()}
