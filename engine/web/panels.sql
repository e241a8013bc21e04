-- The nine SQL panels of the Grafana dashboard (compose/grafana/dashboards/
-- claire-paper-trading.json), word for word, in Grafana's dialect: `$run` is the run and
-- `$__timeFilter(ts)` the dashboard's time range. The web view runs them over the whole
-- run (engine/web/panels.py); tests/web/test_panels.py keeps the dashboard equal to this file.

-- name: daily_drawdown
-- panel: Daily drawdown
SELECT daily_drawdown_pct::float8 AS daily_drawdown
FROM portfolio_snapshots
WHERE run_id = '$run'
ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC
LIMIT 1;

-- name: exposure
-- panel: Exposure
SELECT exposure_pct::float8 AS exposure
FROM portfolio_snapshots
WHERE run_id = '$run'
ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC
LIMIT 1;

-- name: open_positions
-- panel: Open positions
SELECT open_positions
FROM portfolio_snapshots
WHERE run_id = '$run'
ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC
LIMIT 1;

-- name: total_pnl
-- panel: Total PnL
SELECT (equity - (SELECT (config -> 'settings' ->> 'initial_capital')::numeric FROM runs WHERE run_id = '$run'))::float8 AS total_pnl
FROM portfolio_snapshots
WHERE run_id = '$run'
ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC
LIMIT 1;

-- name: win_rate
-- panel: Win rate
WITH fills AS (
    SELECT t.symbol, t.ts, o.ts AS placed_at, t.trade_id,
           CASE t.side WHEN 'buy' THEN t.qty ELSE -t.qty END AS signed_qty,
           CASE t.side WHEN 'sell' THEN t.qty * t.price ELSE -t.qty * t.price END - t.fee AS cash
    FROM trades t
    LEFT JOIN orders o ON o.run_id = t.run_id AND o.order_id = t.order_id
    WHERE t.run_id = '$run'
), walked AS (
    SELECT symbol, ts, placed_at, trade_id, cash,
           sum(signed_qty) OVER (PARTITION BY symbol ORDER BY ts, placed_at NULLS LAST, trade_id)
               AS position
    FROM fills
), numbered AS (
    SELECT symbol, cash, position,
           coalesce(sum(CASE WHEN position = 0 THEN 1 ELSE 0 END) OVER (
               PARTITION BY symbol ORDER BY ts, placed_at NULLS LAST, trade_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS trip
    FROM walked
), trips AS (
    SELECT symbol, trip, sum(cash) AS net_pnl
    FROM numbered
    GROUP BY symbol, trip
    HAVING bool_or(position = 0)
)
SELECT coalesce(avg(CASE WHEN net_pnl > 0 THEN 1.0 ELSE 0.0 END), 0)::float8 AS win_rate
FROM trips;

-- name: equity_curve
-- panel: Equity curve
SELECT ts AS "time", equity::float8 AS equity
FROM portfolio_snapshots
WHERE run_id = '$run' AND $__timeFilter(ts)
ORDER BY ts, event_id;

-- name: daily_pnl
-- panel: Daily PnL
WITH closes AS (
    SELECT DISTINCT ON (date_trunc('day', ts, 'UTC'))
           date_trunc('day', ts, 'UTC') AS day, ts, equity
    FROM portfolio_snapshots
    WHERE run_id = '$run'
    ORDER BY date_trunc('day', ts, 'UTC'), ts DESC, (cause_id = 'run-end') DESC, event_id DESC
), days AS (
    SELECT day, ts, equity - coalesce(lag(equity) OVER (ORDER BY day), (SELECT (config -> 'settings' ->> 'initial_capital')::numeric FROM runs WHERE run_id = '$run')) AS pnl
    FROM closes
)
SELECT to_char(day AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, pnl::float8 AS pnl
FROM days
WHERE $__timeFilter(ts)
ORDER BY days.day;

-- name: trades_per_day
-- panel: Trades per day
SELECT date_trunc('day', ts, 'UTC') AS "time", count(*) AS trades
FROM trades
WHERE run_id = '$run' AND $__timeFilter(ts)
GROUP BY 1
ORDER BY 1;

-- name: recent_trades
-- panel: Recent trades
SELECT t.ts AS "time", t.symbol, t.side, t.status, t.qty::float8 AS qty,
       t.price::float8 AS price, t.notional::float8 AS notional, t.fee::float8 AS fee,
       t.slippage_bps::float8 AS slippage_bps, t.liquidity
FROM trades t
WHERE t.run_id = '$run'
ORDER BY t.ts DESC, t.trade_id DESC
LIMIT 50;
