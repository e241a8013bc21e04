-- Perpetual futures: funding payments, liquidations, and margin in snapshots and positions.
CREATE TABLE funding_payments (
    run_id          text NOT NULL REFERENCES runs (run_id),
    event_id        text NOT NULL,
    ts              timestamptz NOT NULL,
    cause_id        text,
    symbol          market_symbol NOT NULL,
    qty             finite_numeric NOT NULL CONSTRAINT funding_payments_qty_open CHECK (qty <> 0),
    fair_price      finite_numeric NOT NULL
        CONSTRAINT funding_payments_fair_price_positive CHECK (fair_price > 0),
    rate            finite_numeric NOT NULL,
    -- Positive: the position paid; negative: it received.
    amount          finite_numeric NOT NULL,
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX funding_payments_run_ts ON funding_payments (run_id, ts);

CREATE TABLE liquidations (
    run_id              text NOT NULL REFERENCES runs (run_id),
    event_id            text NOT NULL,
    ts                  timestamptz NOT NULL,
    cause_id            text,
    order_id            text NOT NULL,
    symbol              market_symbol NOT NULL,
    qty                 finite_numeric NOT NULL,  -- signed: the position that was closed
    entry_price         finite_numeric NOT NULL
        CONSTRAINT liquidations_entry_positive CHECK (entry_price > 0),
    liquidation_price   finite_numeric NOT NULL
        CONSTRAINT liquidations_price_positive CHECK (liquidation_price > 0),
    mark_price          finite_numeric NOT NULL
        CONSTRAINT liquidations_mark_positive CHECK (mark_price > 0),
    margin_lost         finite_numeric NOT NULL
        CONSTRAINT liquidations_margin_not_negative CHECK (margin_lost >= 0),
    fee                 finite_numeric NOT NULL
        CONSTRAINT liquidations_fee_not_negative CHECK (fee >= 0),
    leverage            finite_numeric NOT NULL
        CONSTRAINT liquidations_leverage_positive CHECK (leverage > 0),
    maintenance_margin_rate finite_numeric NOT NULL,
    PRIMARY KEY (run_id, event_id)
);
CREATE INDEX liquidations_run_ts ON liquidations (run_id, ts);

ALTER TABLE portfolio_snapshots
    ADD COLUMN funding finite_numeric NOT NULL DEFAULT 0,
    ADD COLUMN margin_used finite_numeric NOT NULL DEFAULT 0
        CONSTRAINT portfolio_snapshots_margin_not_negative CHECK (margin_used >= 0);

ALTER TABLE positions
    ADD COLUMN margin finite_numeric NOT NULL DEFAULT 0,
    ADD COLUMN liquidation_price finite_numeric;

ALTER TABLE risk_events DROP CONSTRAINT risk_events_kind_known;
ALTER TABLE risk_events ADD CONSTRAINT risk_events_kind_known
    CHECK (kind IN ('refusal', 'resize', 'state_change', 'liquidation'));
