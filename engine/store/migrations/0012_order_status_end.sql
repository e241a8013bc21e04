-- An order's end (expired, cancelled, rejected) records what it left unfilled, so
-- at the same time as a partial fill the end is the later result, not the row
-- with less left working.
CREATE OR REPLACE VIEW order_status AS
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
    -- Same time: a partial fill comes before the order's end, and of two fills the
    -- one with less left working is the later one.
    ORDER BY x.ts DESC, (x.status = 'partially_filled') ASC, x.remaining_qty ASC
    LIMIT 1
) l ON true;
