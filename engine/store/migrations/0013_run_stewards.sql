-- What attends a run from outside this machine's processes (a stack's steward, which
-- takes its operator commands): it beats while it does. An operator command goes to a
-- run recorded in another database only while its steward beats (engine.ops.commands).
-- The times are the database's own (now()), so no two machines' clocks are compared.
CREATE TABLE run_stewards (
    run_id      text NOT NULL REFERENCES runs (run_id),
    steward     text NOT NULL CHECK (steward <> '' AND length(steward) <= 128),
    started_at  timestamptz NOT NULL DEFAULT now(),
    beat_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, steward)
);
