-- Alerts with episodes: a rule's alert fires once when its condition starts and a
-- second row, with the same episode_id, resolves it once the condition has cleared.
-- One-off alerts (a liquidation, a feed's notice) are episodes of their own.
ALTER TABLE alerts
    ADD COLUMN status text NOT NULL DEFAULT 'firing'
        CONSTRAINT alerts_status_known CHECK (status IN ('firing', 'resolved')),
    ADD COLUMN episode_id text
        CONSTRAINT alerts_episode_id_length CHECK (length(episode_id) BETWEEN 1 AND 128),
    ADD COLUMN value finite_numeric,
    ADD CONSTRAINT alerts_resolved_names_episode
        CHECK (status = 'firing' OR episode_id IS NOT NULL);
CREATE INDEX alerts_run_episode ON alerts (run_id, episode_id);

-- One row per alert episode: when it fired and (if it has) when it resolved.
CREATE VIEW alert_episodes AS
SELECT
    f.run_id,
    coalesce(f.episode_id, f.event_id) AS episode_id,
    f.rule,
    f.severity,
    f.ts AS fired_at,
    f.value AS fired_value,
    f.message,
    f.detail,
    r.ts AS resolved_at,
    r.value AS resolved_value,
    r.message AS resolved_message
FROM alerts f
LEFT JOIN LATERAL (
    SELECT x.ts, x.value, x.message
    FROM alerts x
    WHERE x.run_id = f.run_id
      AND x.status = 'resolved'
      AND x.episode_id = coalesce(f.episode_id, f.event_id)
    ORDER BY x.ts
    LIMIT 1
) r ON true
WHERE f.status = 'firing';

-- Each process that ran a run: a start, then resumes after a stop or a crash. Uptime,
-- restarts, errors and rejected input of the reports come from here. heartbeat_at is
-- the last time the session was known alive (a killed process never sets ended_at).
CREATE TABLE run_sessions (
    run_id          text NOT NULL REFERENCES runs (run_id),
    session_id      text NOT NULL CHECK (session_id <> '' AND length(session_id) <= 128),
    started_at      timestamptz NOT NULL,
    heartbeat_at    timestamptz NOT NULL,
    ended_at        timestamptz,
    end_status      text,
    resumed         boolean NOT NULL DEFAULT false,
    errors          integer NOT NULL DEFAULT 0 CHECK (errors >= 0),
    rejected_input  integer NOT NULL DEFAULT 0 CHECK (rejected_input >= 0),
    pid             integer,
    PRIMARY KEY (run_id, session_id),
    CONSTRAINT run_sessions_heartbeat_after_start CHECK (heartbeat_at >= started_at)
);
