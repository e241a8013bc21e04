-- Reports are SQL over the event tables (design section 5): per-symbol indexes
-- for the daily and final reports, and three views they start from.

CREATE INDEX trades_run_symbol_ts ON trades (run_id, symbol, ts);
CREATE INDEX orders_run_symbol ON orders (run_id, symbol);
CREATE INDEX signals_run_symbol ON signals (run_id, symbol);
CREATE INDEX candles_run_symbol_ts ON candles (run_id, symbol, ts);
CREATE INDEX positions_run_symbol_ts ON positions (run_id, symbol, ts);

-- Each order with what became of it: filled quantity, average fill price, fees,
-- and its latest status ('open' while it is still working).
CREATE VIEW order_status AS
SELECT
    o.run_id,
    o.order_id,
    o.ts AS placed_at,
    o.symbol,
    o.side,
    o.order_type,
    o.qty,
    o.price,
    coalesce(f.filled_qty, 0) AS filled_qty,
    f.avg_price,
    coalesce(f.fees, 0) AS fees,
    coalesce(l.status, 'open') AS status,
    l.ts AS updated_at
FROM orders o
LEFT JOIN LATERAL (
    SELECT sum(t.qty) AS filled_qty,
           sum(t.qty * t.price) / sum(t.qty) AS avg_price,
           sum(t.fee) AS fees
    FROM trades t
    WHERE t.run_id = o.run_id AND t.order_id = o.order_id
) f ON true
LEFT JOIN LATERAL (
    SELECT x.status, x.ts
    FROM (
        SELECT t.status, t.ts, t.remaining_qty FROM trades t
        WHERE t.run_id = o.run_id AND t.order_id = o.order_id
        UNION ALL
        SELECT r.status, r.ts, r.remaining_qty FROM order_results r
        WHERE r.run_id = o.run_id AND r.order_id = o.order_id
    ) x
    -- Same time: the result with less left working is the later one.
    ORDER BY x.ts DESC, x.remaining_qty ASC
    LIMIT 1
) l ON true;

-- The book as of each run's newest snapshot, open and closed positions.
CREATE VIEW latest_positions AS
SELECT p.*
FROM positions p
JOIN (
    SELECT DISTINCT ON (run_id) run_id, event_id
    FROM portfolio_snapshots
    ORDER BY run_id, ts DESC, event_id DESC
) s ON s.run_id = p.run_id AND s.event_id = p.snapshot_id;

-- Fill totals per run and symbol, for the daily and final reports.
CREATE VIEW trade_summary AS
SELECT
    run_id,
    symbol,
    count(*) AS fills,
    count(*) FILTER (WHERE side = 'buy') AS buys,
    count(*) FILTER (WHERE side = 'sell') AS sells,
    sum(notional) AS notional,
    sum(fee) AS fees,
    avg(slippage_bps) AS avg_slippage_bps,
    min(ts) AS first_fill_at,
    max(ts) AS last_fill_at
FROM trades
GROUP BY run_id, symbol;
