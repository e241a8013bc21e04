-- The timeline of each incident: what happened to it, in order.
--
-- `claire incident open|close` and incidents opened by an alert append rows: opened,
-- bundle captured, the runbook's first action and its result, notes, closed. The same
-- events are kept in a file beside the incident's bundle first, so an incident opened
-- while PostgreSQL is down keeps its timeline and writes it here once the database
-- answers again; (incident_id, seq) makes writing it twice harmless.
CREATE TABLE incident_events (
    incident_id     text NOT NULL REFERENCES incidents (incident_id),
    seq             integer NOT NULL CONSTRAINT incident_events_seq_positive CHECK (seq > 0),
    ts              timestamptz NOT NULL,
    kind            text NOT NULL
        CONSTRAINT incident_events_kind_known
        CHECK (kind IN ('opened', 'bundle', 'action', 'note', 'closed')),
    text            text NOT NULL
        CONSTRAINT incident_events_text_length CHECK (length(text) <= 4000),
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (incident_id, seq)
);
CREATE INDEX incident_events_ts ON incident_events (incident_id, ts);

-- A data-stop incident asks a live run to drop its feed's connection and backfill.
ALTER TABLE run_commands DROP CONSTRAINT run_commands_command_known;
ALTER TABLE run_commands ADD CONSTRAINT run_commands_command_known
    CHECK (command IN ('stop', 'emergency_stop', 'halt', 'resume', 'reconnect'));
