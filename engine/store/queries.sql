-- Named queries, loaded by engine/store/queries.py into a dict by name.
-- Each block starts with "-- name: <name>"; comment lines right after it describe it.
-- Parameters use psycopg's %(name)s style, so a literal percent sign is written %%.
--
-- The insert_* queries move a batch out of the table's staging table, which the
-- writer fills by COPY (Session.stage; its columns are the INSERT's, in order): two
-- statements per table per batch, and the row count says how many rows were new.
-- ON CONFLICT names the key, so re-delivery is a no-op while any other uniqueness
-- breach (say, a second order with the same order_id) still fails loudly.

-- name: insert_candles
INSERT INTO candles (run_id, event_id, ts, cause_id, symbol, open_time, interval_s,
                     open, high, low, close, volume)
SELECT %(run_id)s::text, * FROM pg_temp.stage_candles
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_signals
INSERT INTO signals (run_id, event_id, ts, cause_id, symbol, side, confidence, reason, strategy,
                     order_type, limit_price)
SELECT %(run_id)s::text, * FROM pg_temp.stage_signals
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_orders
INSERT INTO orders (run_id, event_id, order_id, ts, cause_id, symbol, side, order_type, qty,
                    price, decision_price, intent, ttl_s, time_in_force, post_only)
SELECT %(run_id)s::text, * FROM pg_temp.stage_orders
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_trades
INSERT INTO trades (run_id, trade_id, order_id, ts, cause_id, symbol, side, status, qty, price,
                    requested_price, fee, slippage_bps, liquidity, remaining_qty, reason,
                    market_event_id, spread_bps)
SELECT %(run_id)s::text, * FROM pg_temp.stage_trades
ON CONFLICT (run_id, trade_id) DO NOTHING;

-- name: insert_order_results
INSERT INTO order_results (run_id, event_id, order_id, ts, cause_id, symbol, side, status,
                           requested_price, remaining_qty, reason, market_event_id)
SELECT %(run_id)s::text, * FROM pg_temp.stage_order_results
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_portfolio_snapshots
INSERT INTO portfolio_snapshots (run_id, event_id, ts, cause_id, cash, equity, realized_pnl,
                                 unrealized_pnl, fees, exposure, exposure_pct, peak_equity,
                                 drawdown_pct, day_start_equity, daily_drawdown_pct,
                                 open_positions, funding, margin_used)
SELECT %(run_id)s::text, * FROM pg_temp.stage_portfolio_snapshots
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_positions
INSERT INTO positions (run_id, snapshot_id, ts, symbol, qty, avg_entry, mark_price, cost_basis,
                       realized_pnl, margin, liquidation_price)
SELECT %(run_id)s::text, * FROM pg_temp.stage_positions
ON CONFLICT (run_id, snapshot_id, symbol) DO NOTHING;

-- name: insert_funding_payments
INSERT INTO funding_payments (run_id, event_id, ts, cause_id, symbol, qty, fair_price, rate, amount)
SELECT %(run_id)s::text, * FROM pg_temp.stage_funding_payments
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_liquidations
INSERT INTO liquidations (run_id, event_id, ts, cause_id, order_id, symbol, qty, entry_price,
                          liquidation_price, mark_price, margin_lost, fee, leverage,
                          maintenance_margin_rate)
SELECT %(run_id)s::text, * FROM pg_temp.stage_liquidations
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_risk_events
INSERT INTO risk_events (run_id, event_id, ts, cause_id, kind, reason, symbol, state, message,
                         detail)
SELECT %(run_id)s::text, * FROM pg_temp.stage_risk_events
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: insert_alerts
INSERT INTO alerts (run_id, event_id, ts, cause_id, severity, rule, message, detail, status,
                    episode_id, value)
SELECT %(run_id)s::text, * FROM pg_temp.stage_alerts
ON CONFLICT (run_id, event_id) DO NOTHING;

-- name: advance_market_cursors
-- The last processed market event per symbol; it only moves forward in event time
-- (at the same time, to the event delivered last), so re-delivering an old batch
-- leaves it where it is.
INSERT INTO market_cursors (run_id, symbol, last_event_id, last_event_ts)
SELECT %(run_id)s::text, *
FROM unnest(%(symbol)s::text[], %(event_id)s::text[], %(ts)s::timestamptz[])
ON CONFLICT (run_id, symbol) DO UPDATE
SET last_event_id = EXCLUDED.last_event_id,
    last_event_ts = EXCLUDED.last_event_ts
WHERE market_cursors.last_event_ts < EXCLUDED.last_event_ts
   OR (market_cursors.last_event_ts = EXCLUDED.last_event_ts
       AND market_cursors.last_event_id <> EXCLUDED.last_event_id);

-- name: advance_run
-- The run's last processed market event, with the same forward-only rule.
UPDATE runs
SET last_event_id = %(event_id)s, last_event_ts = %(ts)s
WHERE run_id = %(run_id)s
  AND (last_event_ts IS NULL
       OR last_event_ts < %(ts)s
       OR (last_event_ts = %(ts)s AND last_event_id <> %(event_id)s));

-- name: insert_run
INSERT INTO runs (run_id, config, data_source, started_at, planned_end)
VALUES (%(run_id)s, %(config)s::jsonb, %(data_source)s, %(started_at)s, %(planned_end)s)
ON CONFLICT (run_id) DO NOTHING;

-- name: get_run
SELECT run_id, config, data_source, started_at, planned_end, ended_at, status,
       last_event_id, last_event_ts, end_reason
FROM runs
WHERE run_id = %(run_id)s;

-- name: list_runs
SELECT run_id, data_source, started_at, planned_end, ended_at, status, last_event_ts,
       end_reason
FROM runs
ORDER BY started_at DESC, run_id;

-- name: end_run
-- Record how a run ended and why; a run that already ended keeps its first ending.
UPDATE runs
SET status = %(status)s, ended_at = %(ended_at)s, end_reason = %(reason)s
WHERE run_id = %(run_id)s AND status = 'running';

-- name: reopen_run
-- A crashed or stopped run resumes: running again, with no end.
UPDATE runs
SET status = 'running', ended_at = NULL, end_reason = NULL
WHERE run_id = %(run_id)s AND status IN ('crashed', 'stopped');

-- name: market_cursors
SELECT symbol, last_event_id, last_event_ts
FROM market_cursors
WHERE run_id = %(run_id)s
ORDER BY symbol;

-- name: count_run_rows
-- Rows per table for one run, for `claire status` and backup verification.
SELECT
    (SELECT count(*) FROM candles WHERE run_id = %(run_id)s) AS candles,
    (SELECT count(*) FROM signals WHERE run_id = %(run_id)s) AS signals,
    (SELECT count(*) FROM orders WHERE run_id = %(run_id)s) AS orders,
    (SELECT count(*) FROM trades WHERE run_id = %(run_id)s) AS trades,
    (SELECT count(*) FROM order_results WHERE run_id = %(run_id)s) AS order_results,
    (SELECT count(*) FROM portfolio_snapshots WHERE run_id = %(run_id)s) AS portfolio_snapshots,
    (SELECT count(*) FROM positions WHERE run_id = %(run_id)s) AS positions,
    (SELECT count(*) FROM risk_events WHERE run_id = %(run_id)s) AS risk_events,
    (SELECT count(*) FROM alerts WHERE run_id = %(run_id)s) AS alerts,
    (SELECT count(*) FROM incidents WHERE run_id = %(run_id)s) AS incidents;

-- name: insert_incident
INSERT INTO incidents (incident_id, run_id, type, opened_at, summary, action_taken, bundle_path,
                       detail)
VALUES (%(incident_id)s, %(run_id)s, %(type)s, %(opened_at)s, %(summary)s, %(action_taken)s,
        %(bundle_path)s, %(detail)s::jsonb)
ON CONFLICT (incident_id) DO NOTHING;

-- name: resolve_incident
UPDATE incidents
SET resolved_at = %(resolved_at)s
WHERE incident_id = %(incident_id)s AND resolved_at IS NULL;

-- name: lock_migrations
-- Held until the migrating transaction ends; a second claire waits here.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version, checksum FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: has_schema_migrations
SELECT to_regclass('schema_migrations') IS NOT NULL AS present;

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM schema_migrations;

-- name: save_checkpoint
-- One checkpoint per run, replaced only by a later one.
INSERT INTO run_checkpoints (run_id, last_event_id, last_event_ts, market_events, state)
VALUES (%(run_id)s, %(event_id)s, %(ts)s, %(market_events)s, %(state)s::jsonb)
ON CONFLICT (run_id) DO UPDATE
SET last_event_id = EXCLUDED.last_event_id,
    last_event_ts = EXCLUDED.last_event_ts,
    market_events = EXCLUDED.market_events,
    state = EXCLUDED.state,
    saved_at = now()
WHERE run_checkpoints.market_events < EXCLUDED.market_events;

-- name: load_checkpoint
SELECT last_event_id, last_event_ts, market_events, state
FROM run_checkpoints
WHERE run_id = %(run_id)s;

-- name: latest_run_id
SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1;

-- name: final_snapshot
-- The run's newest snapshot; at equal times the one taken when the run ended wins.
SELECT event_id, ts, cash, equity, realized_pnl, unrealized_pnl, fees, exposure,
       exposure_pct, peak_equity, drawdown_pct, day_start_equity, daily_drawdown_pct
FROM portfolio_snapshots
WHERE run_id = %(run_id)s
ORDER BY ts DESC, (cause_id = 'run-end') DESC, event_id DESC
LIMIT 1;

-- name: snapshot_positions
SELECT symbol, qty, avg_entry, mark_price, cost_basis, realized_pnl
FROM positions
WHERE run_id = %(run_id)s AND snapshot_id = %(snapshot_id)s AND qty <> 0
ORDER BY symbol;

-- name: run_extremes
SELECT coalesce(max(drawdown_pct), 0) AS max_drawdown_pct,
       coalesce(max(exposure_pct), 0) AS max_exposure_pct,
       count(*) AS snapshots
FROM portfolio_snapshots
WHERE run_id = %(run_id)s;

-- name: fills_in_order
-- Fills in the order they happened: fill time, then the time the order was placed.
SELECT t.trade_id, t.order_id, t.ts, t.symbol, t.side, t.qty, t.price, t.fee,
       t.slippage_bps, t.liquidity
FROM trades t
-- Liquidations are fills the exchange makes without an order of the run.
LEFT JOIN orders o ON o.run_id = t.run_id AND o.order_id = t.order_id
WHERE t.run_id = %(run_id)s
ORDER BY t.ts, o.ts NULLS LAST, t.trade_id;

-- name: refusals_by_reason
SELECT reason, count(*) AS n
FROM risk_events
WHERE run_id = %(run_id)s AND kind = 'refusal'
GROUP BY reason
ORDER BY reason;

-- name: orders_by_status
SELECT status, count(*) AS n FROM order_status WHERE run_id = %(run_id)s GROUP BY status ORDER BY status;

-- name: last_trading_state
SELECT state FROM risk_events
WHERE run_id = %(run_id)s AND kind = 'state_change'
ORDER BY ts DESC, event_id DESC
LIMIT 1;

-- name: export_signals
SELECT event_id AS signal_id, ts, cause_id, symbol, side, confidence, reason, strategy,
       order_type, limit_price
FROM signals WHERE run_id = %(run_id)s ORDER BY ts, event_id;

-- name: export_orders
SELECT order_id, ts, cause_id AS signal_id, symbol, side, order_type, qty, price,
       decision_price, intent, ttl_s, time_in_force, post_only
FROM orders WHERE run_id = %(run_id)s ORDER BY ts, order_id;

-- name: export_trades
SELECT t.trade_id, t.order_id, t.ts, t.symbol, t.side, t.qty, t.price, t.fee,
       t.spread_bps, t.slippage_bps, t.liquidity, t.requested_price, o.decision_price,
       t.status, t.remaining_qty, t.market_event_id
FROM trades t
-- Liquidations are fills the exchange makes without an order of the run.
LEFT JOIN orders o ON o.run_id = t.run_id AND o.order_id = t.order_id
WHERE t.run_id = %(run_id)s
ORDER BY t.ts, o.ts NULLS LAST, t.trade_id;

-- name: export_funding
SELECT event_id AS payment_id, ts, symbol, qty, fair_price, rate, amount
FROM funding_payments WHERE run_id = %(run_id)s ORDER BY ts, event_id;

-- name: export_liquidations
SELECT event_id AS liquidation_id, ts, order_id, symbol, qty, entry_price, liquidation_price,
       mark_price, margin_lost, fee, leverage, maintenance_margin_rate
FROM liquidations WHERE run_id = %(run_id)s ORDER BY ts, event_id;

-- name: export_positions
SELECT ts, snapshot_id, symbol, qty, avg_entry, mark_price, cost_basis, realized_pnl,
       unrealized_pnl, status, margin, liquidation_price
FROM positions WHERE run_id = %(run_id)s ORDER BY ts, snapshot_id, symbol;

-- name: export_snapshots
-- Shares are fractions, named _frac as in every report (the columns keep their old names).
SELECT event_id AS snapshot_id, ts, cause_id, cash, equity, realized_pnl, unrealized_pnl,
       fees, exposure, exposure_pct AS exposure_frac, peak_equity,
       drawdown_pct AS drawdown_frac, day_start_equity,
       daily_drawdown_pct AS daily_drawdown_frac, open_positions, funding, margin_used
FROM portfolio_snapshots WHERE run_id = %(run_id)s ORDER BY ts, event_id;

-- name: export_risk_events
SELECT event_id, ts, cause_id, kind, reason, symbol, state, message, detail
FROM risk_events WHERE run_id = %(run_id)s ORDER BY ts, event_id;

-- name: export_alerts
SELECT event_id, ts, cause_id, severity, rule, message, detail, status, episode_id, value
FROM alerts WHERE run_id = %(run_id)s ORDER BY ts, event_id;

-- name: run_counts
SELECT
    (SELECT count(*) FROM trades WHERE run_id = %(run_id)s) AS fills,
    (SELECT count(*) FROM orders WHERE run_id = %(run_id)s) AS orders,
    (SELECT count(*) FROM risk_events WHERE run_id = %(run_id)s AND kind = 'refusal') AS refusals,
    -- Alerts raised; the rows that resolve an episode are not new alerts.
    (SELECT count(*) FROM alerts WHERE run_id = %(run_id)s AND status = 'firing') AS alerts;

-- name: net_position_by_symbol
-- What the stored fills add up to, to check a checkpoint before resuming from it.
SELECT symbol, sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS qty
FROM trades WHERE run_id = %(run_id)s GROUP BY symbol;

-- name: insert_rejected_rows
INSERT INTO rejected_rows (run_id, source, line, reason)
SELECT %(run_id)s::text, *
FROM unnest(%(source)s::text[], %(line)s::bigint[], %(reason)s::text[])
ON CONFLICT (run_id, source, line) DO NOTHING;

-- name: upsert_rejected_counts
-- A resumed run counts the same rows again: the count is replaced, not added to.
INSERT INTO rejected_counts (run_id, source, reason, rows)
SELECT %(run_id)s::text, *
FROM unnest(%(source)s::text[], %(reason)s::text[], %(rows)s::bigint[])
ON CONFLICT (run_id, source, reason) DO UPDATE SET rows = EXCLUDED.rows;

-- name: rejected_by_reason
SELECT reason, sum(rows)::bigint AS n
FROM rejected_counts
WHERE run_id = %(run_id)s
GROUP BY reason
ORDER BY reason;

-- name: export_rejected_rows
SELECT source, line, reason
FROM rejected_rows WHERE run_id = %(run_id)s ORDER BY source, line;

-- name: insert_service_event
INSERT INTO service_events (run_id, service, kind, pid, exit_code, ts)
VALUES (%(run_id)s, %(service)s, %(kind)s, %(pid)s, %(exit_code)s,
        COALESCE(%(ts)s::timestamptz, now()));

-- name: service_events
SELECT ts, service, kind, pid, exit_code FROM service_events
WHERE run_id = %(run_id)s ORDER BY ts, id;

-- Daily and final reports: the same figures over a window of market time
-- [%(start)s, %(end)s); the final report's window is the whole run.

-- name: report_snapshots
-- Equity, exposure and drawdown at every snapshot; at equal times the run-end one last.
SELECT event_id, ts, equity, realized_pnl, unrealized_pnl, fees, exposure, exposure_pct,
       drawdown_pct, daily_drawdown_pct, open_positions, funding, margin_used, peak_equity
FROM portfolio_snapshots
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s
ORDER BY ts, (cause_id = 'run-end'), event_id;

-- name: report_fills
-- Fills up to the window's end, in the order they happened, with what they paid.
SELECT t.trade_id, t.order_id, t.ts, t.symbol, t.side, t.qty, t.price, t.fee,
       t.spread_bps, t.slippage_bps, t.liquidity, t.requested_price, t.status
FROM trades t
LEFT JOIN orders o ON o.run_id = t.run_id AND o.order_id = t.order_id
WHERE t.run_id = %(run_id)s AND t.ts < %(end)s
ORDER BY t.ts, o.ts NULLS LAST, t.trade_id;

-- name: report_orders_by_status
SELECT status, count(*) AS n FROM order_status
WHERE run_id = %(run_id)s AND placed_at >= %(start)s AND placed_at < %(end)s
GROUP BY status ORDER BY status;

-- name: report_signals
SELECT symbol, side, count(*) AS n
FROM signals
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s
GROUP BY symbol, side
ORDER BY symbol, side;

-- name: report_risk_events
SELECT kind, reason, count(*) AS n
FROM risk_events
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s
  AND kind IN ('refusal', 'resize')
GROUP BY kind, reason
ORDER BY kind, reason;

-- name: report_state_changes
SELECT ts, reason, state, message, detail
FROM risk_events
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s AND kind = 'state_change'
ORDER BY ts, event_id;

-- name: report_last_state
SELECT state FROM risk_events
WHERE run_id = %(run_id)s AND ts < %(end)s AND kind = 'state_change'
ORDER BY ts DESC, event_id DESC
LIMIT 1;

-- name: report_alert_episodes
-- Episodes that fired in the window, or fired before it and were still open at its start.
SELECT episode_id, rule, severity, fired_at, fired_value, message, resolved_at, resolved_value
FROM alert_episodes
WHERE run_id = %(run_id)s AND fired_at < %(end)s
  AND (fired_at >= %(start)s OR resolved_at IS NULL OR resolved_at >= %(start)s)
ORDER BY fired_at, episode_id;

-- name: report_incidents
-- The type as the operator types it (`claire incident open TYPE`); `market_ts`: the
-- run's market time when the incident was opened, so a replay's incidents fall on the
-- market day they are about.
SELECT incident_id,
       CASE type WHEN 'unresponsive_service' THEN 'unresponsive'
                 ELSE replace(type, '_', '-') END AS type,
       opened_at, resolved_at, summary, action_taken,
       (detail ->> 'market_ts')::timestamptz AS market_ts
FROM incidents
WHERE run_id = %(run_id)s
ORDER BY opened_at, incident_id;

-- name: report_max_position_share
-- The largest single position's notional over equity at any snapshot of the window.
SELECT coalesce(max(abs(p.qty) * p.mark_price / s.equity), 0) AS worst
FROM positions p
JOIN portfolio_snapshots s ON s.run_id = p.run_id AND s.event_id = p.snapshot_id
WHERE p.run_id = %(run_id)s AND p.ts >= %(start)s AND p.ts < %(end)s AND s.equity > 0;

-- name: report_order_times
SELECT ts FROM orders
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s
ORDER BY ts;

-- name: report_candle_times
SELECT symbol, interval_s, ts FROM candles
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s
ORDER BY symbol, ts;

-- name: report_funding
SELECT coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS paid,
       coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS received,
       count(*) AS payments
FROM funding_payments
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s;

-- name: report_liquidations
SELECT ts, symbol, qty, entry_price, liquidation_price, margin_lost, fee, leverage
FROM liquidations
WHERE run_id = %(run_id)s AND ts >= %(start)s AND ts < %(end)s
ORDER BY ts, event_id;

-- name: report_sessions
SELECT session_id, started_at, heartbeat_at, ended_at, end_status, resumed, errors,
       rejected_input
FROM run_sessions
WHERE run_id = %(run_id)s
ORDER BY started_at, session_id;

-- name: report_last_market_ts
SELECT max(ts) AS ts FROM portfolio_snapshots WHERE run_id = %(run_id)s;

-- name: start_session
INSERT INTO run_sessions (run_id, session_id, started_at, heartbeat_at, resumed, pid)
VALUES (%(run_id)s, %(session_id)s, %(started_at)s, %(started_at)s, %(resumed)s, %(pid)s)
ON CONFLICT (run_id, session_id) DO NOTHING;

-- name: beat_session
-- The session is alive, with its counts so far; an ended session stays as it ended.
UPDATE run_sessions
SET heartbeat_at = greatest(heartbeat_at, %(now)s), errors = %(errors)s,
    rejected_input = %(rejected_input)s
WHERE run_id = %(run_id)s AND session_id = %(session_id)s AND ended_at IS NULL;

-- name: end_session
UPDATE run_sessions
SET heartbeat_at = greatest(heartbeat_at, %(now)s), ended_at = greatest(started_at, %(now)s),
    end_status = %(status)s, errors = %(errors)s, rejected_input = %(rejected_input)s
WHERE run_id = %(run_id)s AND session_id = %(session_id)s AND ended_at IS NULL;

-- name: firing_alerts
-- Alert episodes of a run that have not resolved, oldest first (status views, incidents).
SELECT episode_id, rule, severity, fired_at, fired_value, message, detail
FROM alert_episodes
WHERE run_id = %(run_id)s AND resolved_at IS NULL
ORDER BY fired_at, episode_id;

-- name: audit_candles
-- The run's own candles, for re-deriving its fills (claire audit fills).
SELECT event_id, ts, cause_id, symbol, open_time, interval_s, open, high, low, close, volume
FROM candles WHERE run_id = %(run_id)s ORDER BY ts, symbol;

-- name: audit_orders
SELECT order_id, ts, side, price, decision_price, ttl_s
FROM orders WHERE run_id = %(run_id)s ORDER BY ts, order_id;

-- name: audit_fills
-- Fills in the order they happened (as fills_in_order), with what each one met.
SELECT t.trade_id, t.order_id, t.ts, t.symbol, t.side, t.qty, t.price, t.requested_price,
       t.spread_bps, t.liquidity, t.market_event_id
FROM trades t
LEFT JOIN orders o ON o.run_id = t.run_id AND o.order_id = t.order_id
WHERE t.run_id = %(run_id)s
ORDER BY t.ts, o.ts NULLS LAST, t.trade_id;

-- name: audit_state_changes
SELECT ts, state FROM risk_events
WHERE run_id = %(run_id)s AND kind = 'state_change'
ORDER BY ts, event_id;

-- name: beat_steward
INSERT INTO run_stewards (run_id, steward) VALUES (%(run_id)s, %(steward)s)
ON CONFLICT (run_id, steward) DO UPDATE SET beat_at = now();

-- name: leave_steward
DELETE FROM run_stewards WHERE run_id = %(run_id)s AND steward = %(steward)s;

-- name: steward_alive
SELECT EXISTS (
    SELECT 1 FROM run_stewards
    WHERE run_id = %(run_id)s
      AND beat_at > now() - make_interval(secs => %(within_s)s)
) AS alive;
