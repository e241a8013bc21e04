-- Limit orders from strategies (time in force, post-only) and the half spread a
-- taker fill pays, recorded apart from slippage.
ALTER TABLE signals
    ADD COLUMN order_type text NOT NULL DEFAULT 'market'
        CONSTRAINT signals_type_known CHECK (order_type IN ('market', 'limit')),
    ADD COLUMN limit_price finite_numeric
        CONSTRAINT signals_limit_price_positive CHECK (limit_price > 0),
    ADD CONSTRAINT signals_price_iff_limit
        CHECK ((order_type = 'limit') = (limit_price IS NOT NULL));

ALTER TABLE orders
    ADD COLUMN time_in_force text NOT NULL DEFAULT 'gtc'
        CONSTRAINT orders_time_in_force_known CHECK (time_in_force IN ('gtc', 'ioc', 'fok')),
    ADD COLUMN post_only boolean NOT NULL DEFAULT false;

ALTER TABLE trades
    ADD COLUMN spread_bps finite_numeric NOT NULL DEFAULT 0;
