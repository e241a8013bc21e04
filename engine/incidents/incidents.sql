-- Queries of incident response (engine.incidents.desk), in the style of engine/store.

-- name: upsert_incident
-- Written again whenever the incident changes (its first action, its close): the
-- local record is the source, so a second write is harmless.
INSERT INTO incidents (incident_id, run_id, type, opened_at, resolved_at, summary, action_taken,
                       bundle_path, detail)
VALUES (%(incident_id)s, %(run_id)s, %(type)s, %(opened_at)s, %(resolved_at)s, %(summary)s,
        %(action_taken)s, %(bundle_path)s, %(detail)s::jsonb)
ON CONFLICT (incident_id) DO UPDATE
SET resolved_at = EXCLUDED.resolved_at,
    summary = EXCLUDED.summary,
    action_taken = EXCLUDED.action_taken,
    bundle_path = EXCLUDED.bundle_path,
    detail = EXCLUDED.detail;

-- name: insert_incident_event
INSERT INTO incident_events (incident_id, seq, ts, kind, text, detail)
VALUES (%(incident_id)s, %(seq)s, %(ts)s, %(kind)s, %(text)s, %(detail)s::jsonb)
ON CONFLICT (incident_id, seq) DO NOTHING;

-- name: list_incidents
SELECT incident_id, run_id, type, opened_at, resolved_at, summary, action_taken, bundle_path,
       detail
FROM incidents
ORDER BY opened_at, incident_id;

-- name: get_incident
SELECT incident_id, run_id, type, opened_at, resolved_at, summary, action_taken, bundle_path,
       detail
FROM incidents
WHERE incident_id = %(incident_id)s;

-- name: incident_events
SELECT seq, ts, kind, text, detail
FROM incident_events
WHERE incident_id = %(incident_id)s
ORDER BY seq;

-- name: incident_ids_of_day
SELECT incident_id FROM incidents WHERE incident_id LIKE %(prefix)s;
