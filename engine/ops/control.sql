-- Named queries of the run control channel (engine/ops/control.py), in the style of
-- engine/store/queries.sql. The table is made by migration 0008_run_commands.

-- name: insert_command
INSERT INTO run_commands (run_id, command, note, requested_by, requested_at)
VALUES (%(run_id)s, %(command)s, %(note)s, %(requested_by)s, %(requested_at)s)
RETURNING command_id;

-- name: take_commands
-- The run takes every pending command at once; a second taker gets none of them.
UPDATE run_commands
SET status = 'taken', taken_at = %(now)s
WHERE run_id = %(run_id)s AND status = 'pending'
RETURNING command_id, run_id, command, note, requested_by, requested_at, status, taken_at,
          finished_at, market_ts, result;

-- name: take_command
-- One command, taken by whoever sent it (to deliver it another way) or by the run.
UPDATE run_commands
SET status = 'taken', taken_at = %(now)s
WHERE command_id = %(command_id)s AND status = 'pending';

-- name: finish_command
UPDATE run_commands
SET status = %(status)s, finished_at = %(now)s, market_ts = %(market_ts)s,
    result = %(result)s::jsonb
WHERE command_id = %(command_id)s AND status = 'taken';

-- name: expire_command
UPDATE run_commands
SET status = 'expired', finished_at = %(now)s, result = %(result)s::jsonb
WHERE command_id = %(command_id)s AND status = 'pending';

-- name: get_command
SELECT command_id, run_id, command, note, requested_by, requested_at, status, taken_at,
       finished_at, market_ts, result
FROM run_commands
WHERE command_id = %(command_id)s;

-- name: recent_commands
SELECT command_id, run_id, command, note, requested_by, requested_at, status, taken_at,
       finished_at, market_ts, result
FROM run_commands
WHERE run_id = %(run_id)s
ORDER BY command_id DESC
LIMIT %(limit)s;
