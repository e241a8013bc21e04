-- The paper-run schema: one row per event, keyed by (run_id, event_id).
--
-- Why (run_id, event_id) and not event_id alone: event ids are deterministic
-- (derived from what caused the event, and market event ids come from the
-- exchange or the replay file), so two runs over the same data produce the same
-- ids. Within a run the key makes re-delivery a no-op; across runs nothing clashes.
--
-- Money, prices and sizes are NUMERIC through the domain `finite_numeric`:
-- PostgreSQL's NUMERIC accepts 'NaN' and 'Infinity', and 'NaN' > 0 is true there,
-- so a plain CHECK (price > 0) would let NaN through.
--
-- Not every market event is stored: live public trades can arrive hundreds per
-- second and are re-obtainable from the exchange or the recorded file. Candles
-- (a few thousand a day) are kept for reports and to trace a fill to its bar;
-- for resume, `market_cursors` records the last processed market event per symbol.

CREATE DOMAIN finite_numeric AS numeric
    CONSTRAINT finite_numeric_is_finite CHECK (VALUE > '-Infinity' AND VALUE < 'Infinity');

-- Symbols are validated before they get here; the database says no as well, so
-- text from a bad feed (or an injection attempt) never lands in a symbol column.
CREATE DOMAIN market_symbol AS text
    CONSTRAINT market_symbol_format CHECK (VALUE ~ '^[A-Z0-9]{2,24}$');

CREATE TABLE runs (
    run_id          text PRIMARY KEY CHECK (run_id <> '' AND length(run_id) <= 128),
    config          jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_source     text NOT NULL,
    started_at      timestamptz NOT NULL,
    planned_end     timestamptz,
    ended_at        timestamptz,
    status          text NOT NULL DEFAULT 'running'
        CONSTRAINT runs_status_known
        CHECK (status IN ('running', 'completed', 'crashed', 'stopped', 'failed')),
    last_event_id   text,
    last_event_ts   timestamptz,
    CONSTRAINT runs_planned_end_after_start CHECK (planned_end IS NULL OR planned_end > started_at),
    -- A run that is not running has ended; resuming a crashed run clears ended_at again.
    CONSTRAINT runs_ended_iff_not_running CHECK ((status = 'running') = (ended_at IS NULL)),
    CONSTRAINT runs_last_event_complete CHECK ((last_event_id IS NULL) = (last_event_ts IS NULL))
);

CREATE TABLE market_cursors (
    run_id          text NOT NULL REFERENCES runs (run_id),
    symbol          market_symbol NOT NULL,
    last_event_id   text NOT NULL,
    last_event_ts   timestamptz NOT NULL,
    PRIMARY KEY (run_id, symbol)
);

CREATE TABLE candles (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    symbol          market_symbol NOT NULL,
    open_time       timestamptz NOT NULL,
    interval_s      integer NOT NULL CONSTRAINT candles_interval_positive CHECK (interval_s > 0),
    open            finite_numeric NOT NULL CONSTRAINT candles_open_positive CHECK (open > 0),
    high            finite_numeric NOT NULL CONSTRAINT candles_high_positive CHECK (high > 0),
    low             finite_numeric NOT NULL CONSTRAINT candles_low_positive CHECK (low > 0),
    close           finite_numeric NOT NULL CONSTRAINT candles_close_positive CHECK (close > 0),
    volume          finite_numeric NOT NULL CONSTRAINT candles_volume_not_negative CHECK (volume >= 0),
    PRIMARY KEY (run_id, event_id),
    CONSTRAINT candles_range CHECK (low <= least(open, close) AND high >= greatest(open, close))
);
CREATE INDEX candles_run_ts ON candles (run_id, ts);

CREATE TABLE signals (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    symbol          market_symbol NOT NULL,
    side            text NOT NULL CONSTRAINT signals_side_known CHECK (side IN ('buy', 'sell')),
    confidence      finite_numeric NOT NULL
        CONSTRAINT signals_confidence_range CHECK (confidence BETWEEN 0 AND 1),
    reason          text NOT NULL,
    strategy        text NOT NULL,
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX signals_run_ts ON signals (run_id, ts);

CREATE TABLE orders (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    order_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    symbol          market_symbol NOT NULL,
    side            text NOT NULL CONSTRAINT orders_side_known CHECK (side IN ('buy', 'sell')),
    order_type      text NOT NULL
        CONSTRAINT orders_type_known CHECK (order_type IN ('market', 'limit')),
    qty             finite_numeric NOT NULL CONSTRAINT orders_qty_positive CHECK (qty > 0),
    -- The limit price; market orders have none.
    price           finite_numeric CONSTRAINT orders_price_positive CHECK (price > 0),
    decision_price  finite_numeric NOT NULL
        CONSTRAINT orders_decision_price_positive CHECK (decision_price > 0),
    intent          text NOT NULL CONSTRAINT orders_intent_known CHECK (intent IN ('entry', 'exit')),
    ttl_s           integer NOT NULL CONSTRAINT orders_ttl_positive CHECK (ttl_s > 0),
    PRIMARY KEY (run_id, event_id),
    CONSTRAINT orders_order_id_unique UNIQUE (run_id, order_id),
    CONSTRAINT orders_price_iff_limit CHECK ((order_type = 'limit') = (price IS NOT NULL))
);
CREATE INDEX orders_run_ts ON orders (run_id, ts);

-- Fills only: a rejected, cancelled or expired result never becomes a trade.
CREATE TABLE trades (
    run_id          text NOT NULL REFERENCES runs (run_id),
    trade_id        text NOT NULL,  -- the fill's event_id
    order_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    symbol          market_symbol NOT NULL,
    side            text NOT NULL CONSTRAINT trades_side_known CHECK (side IN ('buy', 'sell')),
    status          text NOT NULL
        CONSTRAINT trades_status_is_fill CHECK (status IN ('filled', 'partially_filled')),
    qty             finite_numeric NOT NULL CONSTRAINT trades_qty_positive CHECK (qty > 0),
    price           finite_numeric NOT NULL
        CONSTRAINT trades_execution_price_positive CHECK (price > 0),
    requested_price finite_numeric
        CONSTRAINT trades_requested_price_positive CHECK (requested_price > 0),
    fee             finite_numeric NOT NULL CONSTRAINT trades_fee_not_negative CHECK (fee >= 0),
    slippage_bps    finite_numeric NOT NULL,
    liquidity       text NOT NULL
        CONSTRAINT trades_liquidity_known CHECK (liquidity IN ('maker', 'taker')),
    remaining_qty   finite_numeric NOT NULL
        CONSTRAINT trades_remaining_not_negative CHECK (remaining_qty >= 0),
    reason          text NOT NULL DEFAULT '',
    market_event_id text,
    notional        numeric GENERATED ALWAYS AS (qty * price) STORED,
    PRIMARY KEY (run_id, trade_id),
    CONSTRAINT trades_filled_means_done CHECK ((status = 'filled') = (remaining_qty = 0))
);
CREATE INDEX trades_run_ts ON trades (run_id, ts);
CREATE INDEX trades_run_order ON trades (run_id, order_id);

-- How an order ended without a fill.
CREATE TABLE order_results (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    order_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    symbol          market_symbol NOT NULL,
    side            text NOT NULL CONSTRAINT order_results_side_known CHECK (side IN ('buy', 'sell')),
    status          text NOT NULL
        CONSTRAINT order_results_status_no_fill
        CHECK (status IN ('rejected', 'cancelled', 'expired')),
    requested_price finite_numeric
        CONSTRAINT order_results_requested_price_positive CHECK (requested_price > 0),
    remaining_qty   finite_numeric NOT NULL
        CONSTRAINT order_results_remaining_not_negative CHECK (remaining_qty >= 0),
    reason          text NOT NULL DEFAULT '',
    market_event_id text,
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX order_results_run_ts ON order_results (run_id, ts);
CREATE INDEX order_results_run_order ON order_results (run_id, order_id);

CREATE TABLE portfolio_snapshots (
    run_id              text NOT NULL REFERENCES runs (run_id),
    event_id            text NOT NULL,
    ts                  timestamptz NOT NULL,
    cause_id            text,
    cash                finite_numeric NOT NULL,
    equity              finite_numeric NOT NULL,
    realized_pnl        finite_numeric NOT NULL,
    unrealized_pnl      finite_numeric NOT NULL,
    fees                finite_numeric NOT NULL
        CONSTRAINT portfolio_snapshots_fees_not_negative CHECK (fees >= 0),
    exposure            finite_numeric NOT NULL
        CONSTRAINT portfolio_snapshots_exposure_not_negative CHECK (exposure >= 0),
    exposure_pct        finite_numeric NOT NULL,
    peak_equity         finite_numeric NOT NULL
        CONSTRAINT portfolio_snapshots_peak_not_negative CHECK (peak_equity >= 0),
    drawdown_pct        finite_numeric NOT NULL,
    day_start_equity    finite_numeric NOT NULL
        CONSTRAINT portfolio_snapshots_day_start_not_negative CHECK (day_start_equity >= 0),
    daily_drawdown_pct  finite_numeric NOT NULL,
    open_positions      integer NOT NULL DEFAULT 0
        CONSTRAINT portfolio_snapshots_open_positions_not_negative CHECK (open_positions >= 0),
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX portfolio_snapshots_run_ts ON portfolio_snapshots (run_id, ts);

-- The positions of each snapshot: qty <> 0 is open, qty = 0 a closed position
-- still carrying its realized PnL. The newest snapshot's rows are the current book.
CREATE TABLE positions (
    run_id          text NOT NULL REFERENCES runs (run_id),
    snapshot_id     text NOT NULL,
    ts              timestamptz NOT NULL,
    symbol          market_symbol NOT NULL,
    qty             finite_numeric NOT NULL,  -- signed: negative is short (perpetuals)
    avg_entry       finite_numeric NOT NULL
        CONSTRAINT positions_avg_entry_not_negative CHECK (avg_entry >= 0),
    mark_price      finite_numeric NOT NULL
        CONSTRAINT positions_mark_price_not_negative CHECK (mark_price >= 0),
    cost_basis      finite_numeric NOT NULL,
    realized_pnl    finite_numeric NOT NULL,
    unrealized_pnl  numeric GENERATED ALWAYS AS (qty * mark_price - cost_basis) STORED,
    status          text GENERATED ALWAYS AS (CASE WHEN qty = 0 THEN 'closed' ELSE 'open' END) STORED,
    -- No foreign key to portfolio_snapshots: the writer inserts positions in the
    -- same transaction as their snapshot, and that check cost more than the
    -- insert itself (a snapshot a minute, for days).
    PRIMARY KEY (run_id, snapshot_id, symbol)
);
CREATE INDEX positions_run_ts ON positions (run_id, ts);

CREATE TABLE risk_events (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    kind            text NOT NULL
        CONSTRAINT risk_events_kind_known CHECK (kind IN ('refusal', 'resize', 'state_change')),
    reason          text NOT NULL,
    symbol          market_symbol,
    state           text NOT NULL
        CONSTRAINT risk_events_state_known CHECK (state IN ('active', 'reducing', 'halted')),
    message         text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX risk_events_run_ts ON risk_events (run_id, ts);

CREATE TABLE alerts (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    severity        text NOT NULL
        CONSTRAINT alerts_severity_known CHECK (severity IN ('info', 'warning', 'critical')),
    rule            text NOT NULL,
    message         text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX alerts_run_ts ON alerts (run_id, ts);

-- The runbook's six incident types (design section 7). run_id may be empty for
-- an incident outside a run, such as a database outage found by preflight.
CREATE TABLE incidents (
    incident_id     text PRIMARY KEY CHECK (incident_id <> ''),
    run_id          text REFERENCES runs (run_id),
    type            text NOT NULL CONSTRAINT incidents_type_known CHECK (type IN (
                        'service_crash', 'risk_limit', 'unresponsive_service',
                        'database_outage', 'resource_shortage', 'data_stop')),
    opened_at       timestamptz NOT NULL,
    resolved_at     timestamptz,
    summary         text NOT NULL,
    action_taken    text NOT NULL DEFAULT '',
    bundle_path     text,
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT incidents_resolved_after_open CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
CREATE INDEX incidents_run_opened ON incidents (run_id, opened_at);
