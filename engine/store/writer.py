"""The writer: batches of events of any type into their tables, one transaction per batch.

Routing:

    Candle              -> candles, and the symbol's market cursor
    Trade (public tick) -> the symbol's market cursor only (ticks are not stored)
    Signal              -> signals
    Order               -> orders (price is the limit price; NULL for market orders)
    OrderResult         -> trades when it is a fill (filled, partially_filled),
                           order_results otherwise (rejected, cancelled, expired)
    PortfolioSnapshot   -> portfolio_snapshots, and one positions row per position
    RiskEvent, Alert    -> risk_events, alerts

Each table's rows are copied into its staging table and moved from there by one
INSERT (see queries.sql), so a batch costs two statements per table touched.
(run_id, event_id) keys make re-delivery a no-op, and the market cursors only move
forward, so writing the same batch twice changes nothing. Every event is validated
again before anything is sent (a frozen dataclass can still be forced with
object.__setattr__); one bad event refuses the whole batch, and the database's
CHECKs stand behind that.

Resume: hand the writer a market event in the same batch as (or after) the
events it caused, so "processed up to here" and its effects commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from engine.errors import InvalidEventError
from engine.events import (
    Alert,
    Barrier,
    Candle,
    Event,
    FundingPayment,
    FundingSettlement,
    Heartbeat,
    Liquidation,
    MarkPrice,
    Order,
    OrderCancel,
    OrderResult,
    PortfolioSnapshot,
    Quote,
    RiskEvent,
    Signal,
    Trade,
    Watermark,
)
from engine.store.runs import Checkpoint
from engine.store.store import Store

# Insert order matters only for positions, which reference their snapshot.
TABLE_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "candles": (
        "event_id", "ts", "cause_id", "symbol", "open_time", "interval_s",
        "open", "high", "low", "close", "volume",
    ),
    "signals": (
        "event_id", "ts", "cause_id", "symbol", "side", "confidence", "reason", "strategy",
        "order_type", "limit_price",
    ),
    "orders": (
        "event_id", "order_id", "ts", "cause_id", "symbol", "side", "order_type", "qty",
        "price", "decision_price", "intent", "ttl_s", "time_in_force", "post_only",
    ),
    "trades": (
        "trade_id", "order_id", "ts", "cause_id", "symbol", "side", "status", "qty", "price",
        "requested_price", "fee", "slippage_bps", "liquidity", "remaining_qty", "reason",
        "market_event_id", "spread_bps",
    ),
    "order_results": (
        "event_id", "order_id", "ts", "cause_id", "symbol", "side", "status",
        "requested_price", "remaining_qty", "reason", "market_event_id",
    ),
    "portfolio_snapshots": (
        "event_id", "ts", "cause_id", "cash", "equity", "realized_pnl", "unrealized_pnl",
        "fees", "exposure", "exposure_pct", "peak_equity", "drawdown_pct",
        "day_start_equity", "daily_drawdown_pct", "open_positions", "funding", "margin_used",
    ),
    "positions": (
        "snapshot_id", "ts", "symbol", "qty", "avg_entry", "mark_price", "cost_basis",
        "realized_pnl", "margin", "liquidation_price",
    ),
    "funding_payments": (
        "event_id", "ts", "cause_id", "symbol", "qty", "fair_price", "rate", "amount",
    ),
    "liquidations": (
        "event_id", "ts", "cause_id", "order_id", "symbol", "qty", "entry_price",
        "liquidation_price", "mark_price", "margin_lost", "fee", "leverage",
        "maintenance_margin_rate",
    ),
    "risk_events": (
        "event_id", "ts", "cause_id", "kind", "reason", "symbol", "state", "message", "detail",
    ),
    "alerts": (
        "event_id", "ts", "cause_id", "severity", "rule", "message", "detail", "status",
        "episode_id", "value",
    ),
}  # fmt: skip

Row = tuple[Any, ...]


def _detail(detail: dict[str, str]) -> str:
    return json.dumps(detail, sort_keys=True)


def _validate(event: object) -> Event:
    if not isinstance(event, Event) or type(event) not in _ROUTES:
        raise InvalidEventError(
            f"the writer cannot store a {type(event).__name__}; pass engine.events events",
            "unknown_type",
        )
    try:
        type(event).__post_init__(event)  # type: ignore[attr-defined]
    except InvalidEventError as exc:
        raise InvalidEventError(f"event {event.event_id!r} refused: {exc}", exc.reason) from None
    return event


class _Batch:
    """Rows per table, de-duplicated by key, and the newest market event per symbol."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Row]] = {table: {} for table in TABLE_COLUMNS}
        self.cursors: dict[str, tuple[datetime, str]] = {}
        self.last: tuple[datetime, str] | None = None

    def add(self, table: str, key: str, row: Row) -> None:
        self.rows[table].setdefault(key, row)  # first delivery wins; duplicates are no-ops

    def saw_market_event(self, symbol: str, ts: datetime, event_id: str) -> None:
        # At equal times the later delivery wins, matching advance_market_cursors.
        current = self.cursors.get(symbol)
        if current is None or ts >= current[0]:
            self.cursors[symbol] = (ts, event_id)
        if self.last is None or ts >= self.last[0]:
            self.last = (ts, event_id)


def _add_candle(batch: _Batch, e: Candle) -> None:
    batch.add(
        "candles",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.symbol, e.open_time, e.interval_s,
         e.open, e.high, e.low, e.close, e.volume),
    )  # fmt: skip
    batch.saw_market_event(e.symbol, e.ts, e.event_id)


def _add_tick(batch: _Batch, e: Trade) -> None:
    batch.saw_market_event(e.symbol, e.ts, e.event_id)


def _add_signal(batch: _Batch, e: Signal) -> None:
    batch.add(
        "signals",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.symbol, e.side.value, e.confidence, e.reason, e.strategy,
         e.order_type.value, e.limit_price),
    )  # fmt: skip


def _add_order(batch: _Batch, e: Order) -> None:
    batch.add(
        "orders",
        e.event_id,
        (e.event_id, e.order_id, e.ts, e.cause_id, e.symbol, e.side.value, e.order_type.value,
         e.qty, e.limit_price, e.decision_price, e.intent.value, e.ttl_s, e.time_in_force.value,
         e.post_only),
    )  # fmt: skip


def _add_order_result(batch: _Batch, e: OrderResult) -> None:
    if e.status.is_fill:
        assert e.liquidity is not None  # guaranteed by OrderResult's validation of fills
        batch.add(
            "trades",
            e.trade_id,
            (e.trade_id, e.order_id, e.ts, e.cause_id, e.symbol, e.side.value, e.status.value,
             e.qty, e.price, e.requested_price, e.fee, e.slippage_bps, e.liquidity.value,
             e.remaining_qty, e.reason, e.market_event_id, e.spread_bps),
        )  # fmt: skip
    else:
        batch.add(
            "order_results",
            e.event_id,
            (e.event_id, e.order_id, e.ts, e.cause_id, e.symbol, e.side.value, e.status.value,
             e.requested_price, e.remaining_qty, e.reason, e.market_event_id),
        )  # fmt: skip


def _add_snapshot(batch: _Batch, e: PortfolioSnapshot) -> None:
    symbols = [p.symbol for p in e.positions]
    if len(set(symbols)) != len(symbols):
        raise InvalidEventError(
            f"snapshot {e.event_id!r} lists a symbol twice among its positions", "duplicate_symbol"
        )
    if e.event_id in batch.rows["portfolio_snapshots"]:
        return  # its positions are already in the batch too
    open_positions = sum(1 for p in e.positions if p.qty != 0)
    batch.add(
        "portfolio_snapshots",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.cash, e.equity, e.realized_pnl, e.unrealized_pnl,
         e.fees, e.exposure, e.exposure_pct, e.peak_equity, e.drawdown_pct,
         e.day_start_equity, e.daily_drawdown_pct, open_positions, e.funding, e.margin_used),
    )  # fmt: skip
    for p in e.positions:
        batch.add(
            "positions",
            f"{e.event_id}\x00{p.symbol}",
            (e.event_id, e.ts, p.symbol, p.qty, p.avg_entry, p.mark_price, p.cost_basis,
             p.realized_pnl, p.margin, p.liquidation_price),
        )  # fmt: skip


def _add_risk_event(batch: _Batch, e: RiskEvent) -> None:
    batch.add(
        "risk_events",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.kind, e.reason, e.symbol, e.state.value, e.message,
         _detail(e.detail)),
    )  # fmt: skip


def _add_alert(batch: _Batch, e: Alert) -> None:
    batch.add(
        "alerts",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.severity.value, e.rule, e.message, _detail(e.detail),
         e.status.value, e.episode_id, e.value),
    )  # fmt: skip


def _add_funding_payment(batch: _Batch, e: FundingPayment) -> None:
    batch.add(
        "funding_payments",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.symbol, e.qty, e.fair_price, e.rate, e.amount),
    )


def _add_liquidation(batch: _Batch, e: Liquidation) -> None:
    batch.add(
        "liquidations",
        e.event_id,
        (e.event_id, e.ts, e.cause_id, e.order_id, e.symbol, e.qty, e.entry_price,
         e.liquidation_price, e.mark_price, e.margin_lost, e.fee, e.leverage,
         e.maintenance_margin_rate),
    )  # fmt: skip


def _not_stored(batch: _Batch, e: Event) -> None:
    """Quotes, heartbeats, watermarks and cancel requests leave their trace in what they cause."""


_ROUTES: Final[dict[type[Event], Any]] = {
    FundingPayment: _add_funding_payment,
    Liquidation: _add_liquidation,
    MarkPrice: _not_stored,
    FundingSettlement: _not_stored,
    Quote: _not_stored,
    Heartbeat: _not_stored,
    Barrier: _not_stored,
    Watermark: _not_stored,
    OrderCancel: _not_stored,
    Candle: _add_candle,
    Trade: _add_tick,
    Signal: _add_signal,
    Order: _add_order,
    OrderResult: _add_order_result,
    PortfolioSnapshot: _add_snapshot,
    RiskEvent: _add_risk_event,
    Alert: _add_alert,
}


class EventWriter:
    """Writes events of one run. Thread-safe as far as the store's pool is."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def write(self, events: Iterable[Event], checkpoint: Checkpoint | None = None) -> int:
        """Write a batch in one transaction; return how many rows were new.

        A `checkpoint` (the pipeline's state after the batch's last market event)
        commits in the same transaction, so stored events and state never disagree.
        Raises InvalidEventError (nothing written) if any event is invalid, and a
        StoreError subclass if the database refuses or cannot be reached.
        """
        batch = _Batch()
        for event in events:
            checked = _validate(event)
            _ROUTES[type(checked)](batch, checked)
        if not any(batch.rows.values()) and not batch.cursors and checkpoint is None:
            return 0
        queries = self.store.queries
        written = 0
        with self.store.db.transaction() as tx:
            for table in TABLE_COLUMNS:
                if batch.rows[table]:
                    tx.stage(table, TABLE_COLUMNS[table], batch.rows[table].values())
                    written += tx.execute(queries[f"insert_{table}"], {"run_id": self.run_id})
            if batch.cursors:
                symbols = list(batch.cursors)
                tx.execute(
                    queries["advance_market_cursors"],
                    {
                        "run_id": self.run_id,
                        "symbol": symbols,
                        "event_id": [batch.cursors[s][1] for s in symbols],
                        "ts": [batch.cursors[s][0] for s in symbols],
                    },
                )
            if batch.last is not None:
                ts, event_id = batch.last
                tx.execute(
                    queries["advance_run"],
                    {"run_id": self.run_id, "event_id": event_id, "ts": ts},
                )
            if checkpoint is not None:
                tx.execute(
                    queries["save_checkpoint"],
                    {
                        "run_id": self.run_id,
                        "event_id": checkpoint.last_event_id,
                        "ts": checkpoint.last_event_ts,
                        "market_events": checkpoint.market_events,
                        "state": checkpoint.state
                        if isinstance(checkpoint.state, str)  # encoded already
                        else json.dumps(checkpoint.state, separators=(",", ":")),
                    },
                )
        return written
