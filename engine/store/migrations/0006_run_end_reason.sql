-- Why a run ended when it did not complete: the error that failed it, or the
-- signal that stopped it. Shown by `papertest status` and the reports.
ALTER TABLE runs ADD COLUMN end_reason text
    CONSTRAINT runs_end_reason_length CHECK (length(end_reason) <= 2000);
