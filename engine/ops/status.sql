-- Named queries of `claire status` (engine/ops/status.py).

-- name: symbol_cursors
SELECT symbol, last_event_ts FROM market_cursors WHERE run_id = %(run_id)s ORDER BY symbol;

-- name: recent_alerts
SELECT ts, severity, rule, message FROM alerts
WHERE run_id = %(run_id)s AND ts >= %(since)s
ORDER BY ts DESC, event_id DESC
LIMIT 20;
