-- Starts, exits and restarts of a run's service processes, written by the supervisor.
CREATE TABLE service_events (
    id          bigserial PRIMARY KEY,
    run_id      text NOT NULL REFERENCES runs (run_id),
    ts          timestamptz NOT NULL DEFAULT now(),
    service     text NOT NULL CONSTRAINT service_events_service_named CHECK (service <> ''),
    kind        text NOT NULL
        CONSTRAINT service_events_kind_known CHECK (kind IN ('start', 'restart', 'exit', 'stop')),
    pid         integer,
    exit_code   integer
);
CREATE INDEX service_events_run_ts ON service_events (run_id, ts);
