-- Replay rows the engine refused, so a run's report can say what it did not trade on.
-- A run keeps the first rows of each file in detail (rejected_rows) and the count of
-- all of them by reason (rejected_counts); a resumed run writes the same rows again,
-- which the keys make a no-op.

CREATE TABLE rejected_rows (
    run_id      text NOT NULL REFERENCES runs (run_id),
    source      text NOT NULL CONSTRAINT rejected_rows_source_named CHECK (source <> ''),
    line        bigint NOT NULL CONSTRAINT rejected_rows_line_positive CHECK (line > 0),
    reason      text NOT NULL CONSTRAINT rejected_rows_reason_given CHECK (reason <> ''),
    PRIMARY KEY (run_id, source, line)
);

CREATE TABLE rejected_counts (
    run_id      text NOT NULL REFERENCES runs (run_id),
    source      text NOT NULL CONSTRAINT rejected_counts_source_named CHECK (source <> ''),
    reason      text NOT NULL CONSTRAINT rejected_counts_reason_given CHECK (reason <> ''),
    rows        bigint NOT NULL CONSTRAINT rejected_counts_rows_positive CHECK (rows > 0),
    PRIMARY KEY (run_id, source, reason)
);
