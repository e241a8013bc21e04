"""The store: a migrated database plus the run-level operations the engine needs.

Events go in through `EventWriter`; this class holds the rest: creating, ending
and resuming runs, counts for status, and incidents. Every query is a named
query from `queries.sql`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from engine.errors import StoreError
from engine.events import check_utc
from engine.runtime.urls import redact_url
from engine.store import schema
from engine.store.db import Database
from engine.store.queries import load_queries
from engine.store.runs import (
    Checkpoint,
    Cursor,
    ResumePoint,
    RunRecord,
    RunStatus,
    config_json,
)

INCIDENT_TYPES = frozenset(
    {
        "service_crash",
        "risk_limit",
        "unresponsive_service",
        "database_outage",
        "resource_shortage",
        "data_stop",
    }
)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.queries = load_queries()

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        max_connections: int = 4,
        connect_timeout_s: float = 10.0,
        external: bool = False,
    ) -> Self:
        """Connect and (by default) bring the schema up to date.

        `external`: the URL came from CLAIRE_POSTGRES_URL, so errors may point there.
        """
        db = Database(
            url,
            max_size=max_connections,
            connect_timeout_s=connect_timeout_s,
            external=external,
        )
        store = cls(db)
        if migrate:
            try:
                store.migrate()
            except BaseException:
                db.close()
                raise
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(url={redact_url(self.db.url)!r})"

    # --- schema -----------------------------------------------------------------

    def migrate(self, target: int | None = None) -> list[int]:
        return schema.migrate(self.db, target=target)

    def schema_version(self) -> int:
        return schema.schema_version(self.db)

    # --- runs -------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        config: Mapping[str, Any],
        data_source: str,
        started_at: datetime,
        planned_end: datetime | None = None,
    ) -> bool:
        """Record a new run (secrets in `config` masked); False if it already exists."""
        check_utc(started_at, "started_at")
        if planned_end is not None:
            check_utc(planned_end, "planned_end")
        return bool(
            self.db.execute(
                self.queries["insert_run"],
                {
                    "run_id": run_id,
                    "config": config_json(config),
                    "data_source": data_source,
                    "started_at": started_at,
                    "planned_end": planned_end,
                },
            )
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self.db.fetch_one(self.queries["get_run"], {"run_id": run_id})
        return RunRecord.from_row(row) if row else None

    def list_runs(self) -> list[RunRecord]:
        rows = self.db.fetch_all(self.queries["list_runs"])
        return [RunRecord.from_row({**row, "config": {}}) for row in rows]

    def end_run(
        self,
        run_id: str,
        status: RunStatus | str,
        ended_at: datetime,
        reason: str | None = None,
    ) -> bool:
        """Mark a running run completed, stopped, crashed or failed, with why if it did not
        complete; False if it was not running."""
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise StoreError(
                "end_run needs an end status such as completed or crashed, not running."
            )
        check_utc(ended_at, "ended_at")
        params = {
            "run_id": run_id,
            "status": status.value,
            "ended_at": ended_at,
            "reason": reason[:2000] if reason else None,
        }
        return bool(self.db.execute(self.queries["end_run"], params))

    def record_service_event(
        self,
        run_id: str,
        service: str,
        kind: str,
        pid: int | None,
        exit_code: int | None,
        ts: datetime | None = None,
    ) -> None:
        """A service process's start, restart, exit or stop, for reports and incidents;
        `ts` when it happened, if it is recorded later (default: now)."""
        self.db.execute(
            self.queries["insert_service_event"],
            {
                "run_id": run_id,
                "service": service,
                "kind": kind,
                "pid": pid,
                "exit_code": exit_code,
                "ts": ts,
            },
        )

    def service_events(self, run_id: str) -> list[dict[str, Any]]:
        return self.db.fetch_all(self.queries["service_events"], {"run_id": run_id})

    def reopen_run(self, run_id: str) -> bool:
        """Resume a crashed or stopped run: it is running again; False if it was neither."""
        return bool(self.db.execute(self.queries["reopen_run"], {"run_id": run_id}))

    def resume_point(self, run_id: str) -> ResumePoint:
        run = self.get_run(run_id)
        if run is None:
            raise StoreError(f"run {run_id!r} is not in the database; check the run id.")
        rows = self.db.fetch_all(self.queries["market_cursors"], {"run_id": run_id})
        cursors = {r["symbol"]: Cursor(r["last_event_id"], r["last_event_ts"]) for r in rows}
        return ResumePoint(run_id, run.last_event_id, run.last_event_ts, cursors)

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The newest checkpoint of a run, or None if it never saved one."""
        row = self.db.fetch_one(self.queries["load_checkpoint"], {"run_id": run_id})
        if row is None:
            return None
        return Checkpoint(
            last_event_id=row["last_event_id"],
            last_event_ts=row["last_event_ts"].astimezone(UTC),
            market_events=int(row["market_events"]),
            state=row["state"],
        )

    def record_rejected_input(
        self,
        run_id: str,
        rows: Sequence[tuple[str, int, str]],
        counts: Sequence[tuple[str, str, int]],
    ) -> None:
        """Store refused input rows (source, line, reason) and all counts (source, reason, n).

        Idempotent: a resumed run records the same rows and counts again.
        """
        with self.db.transaction() as tx:
            if rows:
                tx.execute(
                    self.queries["insert_rejected_rows"],
                    {
                        "run_id": run_id,
                        "source": [r[0] for r in rows],
                        "line": [r[1] for r in rows],
                        "reason": [r[2] for r in rows],
                    },
                )
            if counts:
                tx.execute(
                    self.queries["upsert_rejected_counts"],
                    {
                        "run_id": run_id,
                        "source": [c[0] for c in counts],
                        "reason": [c[1] for c in counts],
                        "rows": [c[2] for c in counts],
                    },
                )

    def rejected_by_reason(self, run_id: str) -> dict[str, int]:
        rows = self.db.fetch_all(self.queries["rejected_by_reason"], {"run_id": run_id})
        return {r["reason"]: int(r["n"]) for r in rows}

    def count_rows(self, run_id: str) -> dict[str, int]:
        row = self.db.fetch_one(self.queries["count_run_rows"], {"run_id": run_id}) or {}
        return {name: int(count) for name, count in row.items()}

    # --- incidents ----------------------------------------------------------------

    def open_incident(
        self,
        incident_id: str,
        *,
        type: str,
        opened_at: datetime,
        summary: str,
        run_id: str | None = None,
        action_taken: str = "",
        bundle_path: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> bool:
        if type not in INCIDENT_TYPES:
            raise StoreError(
                f"incident type {type!r} is unknown; "
                f"use one of {', '.join(sorted(INCIDENT_TYPES))}."
            )
        check_utc(opened_at, "opened_at")
        params = {
            "incident_id": incident_id,
            "run_id": run_id,
            "type": type,
            "opened_at": opened_at,
            "summary": summary,
            "action_taken": action_taken,
            "bundle_path": bundle_path,
            "detail": config_json(detail or {}),
        }
        return bool(self.db.execute(self.queries["insert_incident"], params))

    def resolve_incident(self, incident_id: str, resolved_at: datetime) -> bool:
        check_utc(resolved_at, "resolved_at")
        params = {"incident_id": incident_id, "resolved_at": resolved_at}
        return bool(self.db.execute(self.queries["resolve_incident"], params))

    def beat_steward(self, run_id: str, steward: str) -> None:
        """The run's steward (a stack's) is alive and taking commands, by the database's clock."""
        self.db.execute(self.queries["beat_steward"], {"run_id": run_id, "steward": steward})

    def leave_steward(self, run_id: str, steward: str) -> None:
        """The steward stops attending the run."""
        self.db.execute(self.queries["leave_steward"], {"run_id": run_id, "steward": steward})

    def steward_alive(self, run_id: str, within_s: float) -> bool:
        """Whether a steward of the run beat within the last `within_s` seconds."""
        row = self.db.fetch_one(
            self.queries["steward_alive"], {"run_id": run_id, "within_s": within_s}
        )
        return bool(row and row["alive"])
