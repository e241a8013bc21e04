-- The pipeline's in-memory state after a market event, stored in the same
-- transaction as that event's effects, so a crashed run resumes exactly there.
CREATE TABLE run_checkpoints (
    run_id          text PRIMARY KEY REFERENCES runs (run_id),
    last_event_id   text NOT NULL,
    last_event_ts   timestamptz NOT NULL,
    market_events   bigint NOT NULL CHECK (market_events >= 0),
    state           jsonb NOT NULL,
    saved_at        timestamptz NOT NULL DEFAULT now()
);
