-- The operator's commands to a running run, and the log of what became of them.
--
-- `claire papertest stop`, `claire risk halt` and `claire risk resume` insert a row;
-- the run polls for pending rows between two market events, takes one (pending ->
-- taken), applies it and records the outcome (done or refused, with the market time
-- and a JSON result). A command nobody took in time is expired by whoever sent it.
-- Rows are never deleted: this is the append-only record of who asked for what, and why.
CREATE TABLE run_commands (
    command_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          text NOT NULL REFERENCES runs (run_id),
    command         text NOT NULL
        CONSTRAINT run_commands_command_known
        CHECK (command IN ('stop', 'emergency_stop', 'halt', 'resume')),
    note            text NOT NULL DEFAULT ''
        CONSTRAINT run_commands_note_length CHECK (length(note) <= 2000),
    requested_by    text NOT NULL DEFAULT ''
        CONSTRAINT run_commands_requested_by_length CHECK (length(requested_by) <= 200),
    requested_at    timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
        CONSTRAINT run_commands_status_known
        CHECK (status IN ('pending', 'taken', 'done', 'refused', 'expired')),
    taken_at        timestamptz,
    finished_at     timestamptz,
    market_ts       timestamptz,  -- the run's market time when it applied the command
    result          jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT run_commands_finished_iff_final
        CHECK ((finished_at IS NOT NULL) = (status IN ('done', 'refused', 'expired')))
);
CREATE INDEX run_commands_pending ON run_commands (run_id, command_id) WHERE status = 'pending';
CREATE INDEX run_commands_run ON run_commands (run_id, requested_at);
