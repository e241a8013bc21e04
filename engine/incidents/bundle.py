"""The incident bundle: what an operator (or whoever they hand it to) needs to see.

`incidents/ID.tar.gz` in the data folder (private: the folder 0700, the file 0600):

    manifest.json            what is inside, what could not be captured and why,
                             and the redaction report
    status.json              `claire status --json` at the moment of the incident
    logs/claire.jsonl        the run's last structured log records
    logs/run.log             the end of the run's own output (runs/RUN_ID.log)
    logs/services/NAME.log   the end of each service's output (a run as services)
    events/TABLE.json        the last rows of every table of the run, newest first
    row_counts.json          rows per table of the run
    redis/STREAM.json        the last entries of each Redis stream, and
    redis/groups.json        every consumer group's pending and lag (a run as services)
    processes.json           the run's processes, the machine, the top consumers
    config.json              the run's configuration and this process's settings

Each part is captured on its own: one that fails (the database is down, Redis does
not answer) is listed in the manifest with its reason and the rest is still
written. Every file passes the redactor first (`redact.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from engine.config import Settings
from engine.incidents.redact import BundleRedactor
from engine.plain import iso_utc, plain
from engine.store import Store

LOG_RECORDS: Final = 2000
LOG_TAIL_BYTES: Final = 256 * 1024
PRIVATE_DIR: Final = 0o700
PRIVATE_FILE: Final = 0o600
# Newest first: the first of these columns a table has orders its rows.
_ORDER_COLUMNS: Final = (
    "ts",
    "opened_at",
    "requested_at",
    "started_at",
    "fired_at",
    "created_at",
    "recorded_at",
    "id",
)


# Views worth their own file: an alert's episode is one row (fired, resolved).
VIEWS: Final = ("alert_episodes",)


def incidents_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "incidents"


def ensure_private(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(folder, PRIVATE_DIR)
    return folder


@dataclass(frozen=True)
class BundleSource:
    """Where the bundle's parts come from; `store` is None when the database is down."""

    data_dir: Path
    settings: Settings
    run_id: str | None
    store: Store | None
    store_error: str | None
    now: datetime
    services: bool  # the run has separate service processes
    rows: int = 200


@dataclass
class Bundle:
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[dict[str, str]] = field(default_factory=list)
    redactions: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"bundle {self.path.name}: {len(self.files)} files"
        if self.missing:
            parts = ", ".join(m["part"] for m in self.missing)
            text += f"; not captured: {parts}"
        return text


def _json(value: Any) -> str:
    return json.dumps(plain(value), indent=2, sort_keys=True, default=str) + "\n"


def _tail(path: Path, size: int = LOG_TAIL_BYTES) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")


def _need_store(source: BundleSource) -> Store:
    if source.store is None:
        raise _Missing(f"the database did not answer: {source.store_error or 'unknown reason'}")
    return source.store


def _need_run(source: BundleSource) -> str:
    if source.run_id is None:
        raise _Missing("no run in this data folder")
    return source.run_id


class _Missing(Exception):
    """A part that cannot be captured, with the reason in words."""


# --- the parts ------------------------------------------------------------------------


def _logs(source: BundleSource) -> dict[str, str]:
    from engine.ops.logs import log_folder, read_records

    folder = log_folder(source.data_dir)
    if not folder.exists():
        raise _Missing(f"no log folder at {folder}")
    kept: list[dict[str, Any]] = []
    for record in read_records(folder, run_id=source.run_id):
        kept.append(record)
        if len(kept) > LOG_RECORDS:
            del kept[: len(kept) - LOG_RECORDS]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    return {"logs/claire.jsonl": lines}


def _run_output(source: BundleSource) -> dict[str, str]:
    from engine.home.processes import log_path

    run_id = _need_run(source)
    out: dict[str, str] = {}
    path = log_path(source.data_dir, run_id)
    if path.exists():
        out["logs/run.log"] = _tail(path)
    if source.services:
        from engine.services.host import SERVICES

        for name in SERVICES:
            service_log = source.data_dir / "logs" / f"{name}.log"
            if service_log.exists():
                out[f"logs/services/{name}.log"] = _tail(service_log)
    if not out:
        raise _Missing(f"the run wrote no output file ({path.name}): it ran in a terminal")
    return out


def _status(source: BundleSource) -> dict[str, str]:
    from engine.ops.status import operator_status

    store = _need_store(source)
    found = operator_status(
        store,
        source.data_dir,
        source.settings,
        now=source.now,
        run_id=source.run_id,
        external_db=source.settings.claire_postgres_url is not None,
    )
    return {"status.json": _json(found.as_json())}


def run_tables(store: Store) -> dict[str, str | None]:
    """Every table with a `run_id` column (and the views in VIEWS), and the column that
    orders its rows."""
    rows = store.db.fetch_all(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = current_schema() "
        "AND (t.table_type = 'BASE TABLE' OR c.table_name = ANY(%(views)s)) "
        "ORDER BY c.table_name, c.ordinal_position",
        {"views": list(VIEWS)},
    )
    columns: dict[str, list[str]] = {}
    for row in rows:
        columns.setdefault(str(row["table_name"]), []).append(str(row["column_name"]))
    out: dict[str, str | None] = {}
    for table, names in sorted(columns.items()):
        if "run_id" in names and table != "runs":
            out[table] = next((c for c in _ORDER_COLUMNS if c in names), None)
    return out


def _events(source: BundleSource) -> dict[str, str]:
    store = _need_store(source)
    run_id = _need_run(source)
    out: dict[str, str] = {}
    counts: dict[str, int] = {}
    for table, order in run_tables(store).items():
        # Names come from the database's own catalogue, quoted; values are parameters.
        ordering = f' ORDER BY "{order}" DESC' if order else ""
        query = f'SELECT * FROM "{table}" WHERE run_id = %(run_id)s{ordering} LIMIT %(n)s'  # noqa: S608
        rows = store.db.fetch_all(query, {"run_id": run_id, "n": source.rows})
        out[f"events/{table}.json"] = _json(rows)
        count = store.db.fetch_one(
            f'SELECT count(*) AS n FROM "{table}" WHERE run_id = %(run_id)s',  # noqa: S608
            {"run_id": run_id},
        )
        counts[table] = int(count["n"]) if count else 0
    run = store.get_run(run_id)
    out["events/runs.json"] = _json(
        {
            "run_id": run_id,
            "status": run.status.value if run else None,
            "end_reason": run.end_reason if run else None,
            "last_event_ts": run.last_event_ts if run else None,
        }
    )
    out["row_counts.json"] = _json(counts)
    return out


def _redis(source: BundleSource) -> dict[str, str]:
    """The last entries of each stream (XREVRANGE: reading them claims nothing from the
    services' consumer groups, as XREADGROUP would) and every group's pending and lag."""
    run_id = _need_run(source)
    if not source.services:
        raise _Missing("the run is one process: its streams live in memory, not in Redis")
    from engine.home.lock import run_is_alive

    if not run_is_alive(source.data_dir, run_id):
        raise _Missing("the run's services are not running: no Redis to read")
    from engine.bus.redis import RedisBus
    from engine.events import STREAMS
    from engine.runtime.redis import redis_service
    from engine.services.host import stream_prefix

    server = redis_service(source.data_dir)
    bus = RedisBus(server.start(), prefix=stream_prefix(run_id))
    try:
        out: dict[str, str] = {}
        groups: dict[str, Any] = {}
        for stream in STREAMS:
            key = bus.key(stream)
            entries: list[Any] = list(bus.redis.xrevrange(key, count=source.rows) or [])
            out[f"redis/{stream}.json"] = _json(
                [
                    {"id": _text(i), "fields": {_text(k): _text(v) for k, v in (f or {}).items()}}
                    for i, f in entries
                ]
            )
            try:
                info = bus.redis.xinfo_groups(key)
            except Exception:  # the stream does not exist yet
                info = []
            groups[stream] = [{_text(k): _text(v) for k, v in g.items()} for g in info]
        out["redis/groups.json"] = _json(groups)
        return out
    finally:
        bus.close()
        server.stop()


def _text(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _processes(source: BundleSource) -> dict[str, str]:
    from engine.incidents.figures import largest_files, machine, run_processes, top_consumers

    body = {
        "run_processes": run_processes(source.data_dir, source.run_id),
        "machine": machine(source.data_dir),
        "top": top_consumers(),
        "largest_files": largest_files(source.data_dir),
    }
    return {"processes.json": _json(body)}


def _config(source: BundleSource) -> dict[str, str]:
    body: dict[str, Any] = {"settings_now": source.settings.redacted()}
    if source.store is not None and source.run_id is not None:
        run = source.store.get_run(source.run_id)
        body["run_config"] = run.config if run else None
    else:
        body["run_config"] = None
        body["run_config_missing"] = (
            "no run" if source.run_id is None else "the database did not answer"
        )
    return {"config.json": _json(body)}


def _containers(source: BundleSource) -> dict[str, str]:
    """A Docker stack's containers (state, health, restarts) and their recent logs."""
    from engine.stack.containers import service_logs, stack_exists, stack_rows

    if not stack_exists():
        raise _Missing("no Docker stack answers on this machine")
    rows = stack_rows()
    out = {"containers/containers.json": _json(rows)}
    for row in rows:
        name = str(row["service"])
        out[f"containers/{name}.log"] = "".join(
            line if line.endswith("\n") else line + "\n" for line in service_logs(name, 200)
        )
    return out


PARTS: Final[dict[str, Callable[[BundleSource], dict[str, str]]]] = {
    "logs": _logs,
    "run_output": _run_output,
    "status": _status,
    "events": _events,
    "redis": _redis,
    "processes": _processes,
    "config": _config,
    "containers": _containers,
}


# --- writing ---------------------------------------------------------------------------


def capture(source: BundleSource, path: Path, redactor: BundleRedactor) -> Bundle:
    """Every part that can be captured, redacted, into `path` (a .tar.gz); never raises
    for a part that fails: the manifest says which and why."""
    bundle = Bundle(path)
    texts: dict[str, str] = {}
    for part, take in PARTS.items():
        try:
            texts.update(take(source))
        except _Missing as why:
            bundle.missing.append({"part": part, "reason": str(why)})
        except Exception as exc:  # any failure of one part must leave the others
            reason = f"{type(exc).__name__}: {exc}"
            bundle.missing.append({"part": part, "reason": redactor.scrub(reason, "manifest.json")})
    ensure_private(path.parent)
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as raw:
        _write_tar(raw, texts, source, bundle, redactor)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    return bundle


def _write_tar(
    raw: Any, texts: dict[str, str], source: BundleSource, bundle: Bundle, redactor: BundleRedactor
) -> None:
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        stamp = source.now.timestamp()
        for name, text in sorted(texts.items()):
            data = redactor.scrub(text, name).encode("utf-8")
            bundle.files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            _add(tar, name, data, stamp)
        bundle.redactions = redactor.as_json()
        manifest = {
            "format": 1,
            "created_at": iso_utc(source.now),
            "run_id": source.run_id,
            "files": bundle.files,
            "missing": bundle.missing,
            "redactions": bundle.redactions,
            "rows_per_table": source.rows,
        }
        _add(tar, "manifest.json", _json(manifest).encode("utf-8"), stamp)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = PRIVATE_FILE
    tar.addfile(info, io.BytesIO(data))


__all__ = ["PARTS", "Bundle", "BundleSource", "capture", "ensure_private", "incidents_folder"]
