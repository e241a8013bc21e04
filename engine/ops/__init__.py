"""Operating a run: checks before it starts, its backups, the operator's commands to it,
what attends it while it runs, and access to its database.

    run_checks.py   warnings before a run (capital, volume, strategy vs data)
    preflight.py    the runbook's go/no-go checks (resp.py: the Redis PING)
    backups/        pg_dump backups with manifests: create, verify, restore, prune, schedule
    control.py      the run control channel through PostgreSQL (run_commands)
    commands.py     the operator's side: stop, halt, resume, and waiting for the answer
    steward.py      the run's side: commands between market events, backups, stops
    processes.py    which process runs a run, and whether it is alive
    detach.py       runs in the background
    status.py       `claire status`: one screen, healthy / degraded / no run
    database.py     `claire db url` and `claire db psql`
"""
