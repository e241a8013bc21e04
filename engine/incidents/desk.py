"""The incident desk: open, list, show and close incidents of one data folder.

    desk = IncidentDesk(data_dir, settings, store)        # store None: the database is down
    incident = desk.open(IncidentType.RISK_LIMIT, "drawdown spike", run_id=None)
    desk.close(incident.incident_id, "limits checked, resumed")

Opening an incident, in this order:
1. a new id (`INC-YYYYMMDD-NNNN`, UTC) and the `opened` event;
2. the bundle (`bundle.py`), written even when parts of it cannot be captured;
3. the type's first action (`playbook.py`) and its result;
4. the incident report (`report.py`), beside the bundle.

Everything is kept first in the data folder's `incidents/`: `ID.json` (the
record), `ID.timeline.jsonl`, `ID.tar.gz`, `ID.md` and `ID.html`. Then the record
and the timeline go to PostgreSQL (`incidents`, `incident_events`). When the
database does not answer, the record says it is not written yet, and the next
`claire incident` command that reaches the database writes it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from engine.clock import Clock, WallClock
from engine.config import Settings
from engine.errors import ClaireError, StoreError
from engine.events import Alert
from engine.incident_kinds import (
    FIRST_ACTIONS,
    IncidentType,
    check_incident_id,
    next_incident_id,
    parse_incident_id,
)
from engine.incidents.bundle import Bundle, BundleSource, capture, ensure_private, incidents_folder
from engine.incidents.playbook import ActionResult, Situation, check_service, first_action
from engine.incidents.record import AlertCause, Incident, IncidentError, check_note
from engine.incidents.redact import BundleRedactor, bundle_redactor
from engine.incidents.timeline import LocalTimeline, TimelineEvent
from engine.plain import plain
from engine.store import RunRecord, RunStatus, Store
from engine.store.queries import parse_queries

log = logging.getLogger("claire.incidents")

RECORD_SUFFIX: Final = ".json"


@cache
def incident_queries() -> MappingProxyType[str, str]:
    text = resources.files("engine.incidents").joinpath("incidents.sql").read_text("utf-8")
    return MappingProxyType(parse_queries(text))


class IncidentDesk:
    def __init__(
        self,
        data_dir: Path,
        settings: Settings,
        store: Store | None,
        *,
        store_error: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.folder = incidents_folder(self.data_dir)
        self.settings = settings
        self.store = store
        self.store_error = store_error
        self.clock = clock or WallClock()
        self._q = incident_queries()

    # --- files ------------------------------------------------------------------------

    def _record_path(self, incident_id: str) -> Path:
        return self.folder / f"{incident_id}{RECORD_SUFFIX}"

    def timeline(self, incident_id: str) -> LocalTimeline:
        return LocalTimeline(self.folder / f"{incident_id}.timeline.jsonl")

    def bundle_path(self, incident_id: str) -> Path:
        return self.folder / f"{incident_id}.tar.gz"

    def report_path(self, incident_id: str, fmt: str = "md") -> Path:
        return self.folder / f"{incident_id}.{fmt}"

    def _local_ids(self) -> list[str]:
        if not self.folder.exists():
            return []
        names = (p.name.removesuffix(RECORD_SUFFIX) for p in self.folder.glob(f"*{RECORD_SUFFIX}"))
        return sorted(n for n in names if parse_incident_id(n) is not None)

    def _save(self, incident: Incident) -> None:
        path = self._record_path(incident.incident_id)
        tmp = path.with_name(path.name + ".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(incident.record(), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _load(self, incident_id: str) -> Incident | None:
        path = self._record_path(incident_id)
        if not path.exists():
            return None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # claimed by an open that did not get to write it
            return None
        return Incident.from_record(body, self.timeline(incident_id).events())

    def _claim_id(self, now: datetime) -> str:
        """A new id, taken atomically: its record file is created exclusively."""
        ensure_private(self.folder)
        taken = set(self._local_ids())
        if self.store is not None:
            try:
                rows = self.store.db.fetch_all(
                    self._q["incident_ids_of_day"], {"prefix": f"INC-{now:%Y%m%d}-%"}
                )
                taken.update(str(r["incident_id"]) for r in rows)
            except ClaireError as exc:
                log.warning("could not read the stored incident ids: %s", exc)
        while True:
            candidate = next_incident_id(now.date(), taken)
            try:
                fd = os.open(
                    self._record_path(candidate), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
                )
            except FileExistsError:
                taken.add(candidate)
                continue
            os.close(fd)
            return candidate

    # --- the run ----------------------------------------------------------------------

    def _run(
        self, run_id: str | None, in_process: bool = False
    ) -> tuple[str | None, RunRecord | None, bool]:
        """The run, its record (None when the database is down) and whether it runs now.

        `in_process`: the run is this process's own (its lock says nothing here), and it
        runs as long as its record says so."""
        from engine.home.lock import run_is_alive

        if self.store is not None:
            from engine.ops.status import choose_run
            from engine.report.access import RunNotFound

            record, alive = choose_run(self.store, self.data_dir, run_id)
            if in_process and record is not None:
                alive = record.status is RunStatus.RUNNING
            if run_id is not None and record is None:
                raise RunNotFound(
                    f"no run {run_id} in {self.data_dir}; `claire papertest status` lists the "
                    "runs there."
                )
            return (record.run_id if record else None), record, alive
        if run_id is not None:
            return run_id, None, run_is_alive(self.data_dir, run_id)
        # The database is down: the run a process holds in this folder, if one does.
        from engine.home.processes import runs_folder

        held = sorted(
            p.name.removesuffix(".process.json")
            for p in runs_folder(self.data_dir).glob("*.process.json")
        )
        living = [r for r in held if run_is_alive(self.data_dir, r)]
        candidates = living or held
        return (candidates[-1] if candidates else None), None, bool(living)

    def _services(self, run_id: str | None) -> bool:
        if run_id is None:
            return False
        if self.store is not None:
            try:
                return bool(self.store.service_events(run_id))
            except ClaireError:
                pass
        from engine.incidents.figures import service_processes

        return bool(service_processes(run_id))

    # --- open, close ------------------------------------------------------------------

    def open(
        self,
        kind: IncidentType,
        note: str | None = None,
        *,
        run_id: str | None = None,
        service: str | None = None,
        alert: AlertCause | None = None,
        opened_by: str | None = None,
    ) -> Incident:
        from engine.ops.control import operator_name

        # A note is kept in the timeline, the database and the report: secrets masked.
        text = self._redactor().scrub(check_note(note), "note") if note is not None else None
        if service is not None:
            check_service(service)
        chosen, record, alive = self._run(run_id, in_process=alert is not None)
        services = self._services(chosen)
        now = self.clock.now()
        incident_id = self._claim_id(now)
        who = opened_by or operator_name()
        why, opened = _why_opened(text, alert, who)
        on = f"run {chosen}" if chosen else "no run"
        detail = _opening_detail(text, alert, who, record, alive, services, service)
        timeline = self.timeline(incident_id)
        timeline.append(now, "opened", opened, {"type": kind.label, "run_id": chosen})
        incident = Incident(
            incident_id, kind, chosen, now, f"{kind.label} on {on}: {why}", detail=detail
        )
        self._save(incident)

        bundle = self._opening_bundle(incident_id, chosen, services, timeline, detail)
        situation = Situation(
            data_dir=self.data_dir,
            settings=self.settings,
            store=self.store,
            store_error=self.store_error,
            run_id=chosen,
            run=record,
            alive=alive,
            services=services,
            note=f"incident {incident_id}: {text or why}",
            automatic=alert is not None,
            service=service,
        )
        action = self._take_first_action(kind, situation, timeline, detail)
        incident = replace(
            incident,
            action_taken=f"{action.action}: {action.result}",
            bundle_path=str(bundle.path),
            detail=detail,
            events=tuple(timeline.events()),
        )
        return self._settle(incident)

    def _opening_bundle(
        self,
        incident_id: str,
        run_id: str | None,
        services: bool,
        timeline: LocalTimeline,
        detail: dict[str, Any],
    ) -> Bundle:
        """The incident's bundle, noted in its timeline and its detail."""
        bundle = self._capture(incident_id, run_id, services)
        timeline.append(
            self.clock.now(),
            "bundle",
            bundle.summary(),
            {"path": str(bundle.path), "files": len(bundle.files), "missing": bundle.missing},
        )
        detail["bundle"] = {
            "files": sorted(bundle.files),
            "missing": bundle.missing,
            "redactions": bundle.redactions,
        }
        return bundle

    def _take_first_action(
        self,
        kind: IncidentType,
        situation: Situation,
        timeline: LocalTimeline,
        detail: dict[str, Any],
    ) -> ActionResult:
        """The playbook's first action for `kind`, noted in the timeline and the detail."""
        action = first_action(kind, situation)
        verb = "taken" if action.taken else "not taken"
        timeline.append(
            self.clock.now(),
            "action",
            f"{action.action} ({verb}): {action.result}",
            action.as_json(),
        )
        detail["first_action"] = action.as_json()
        return action

    def close(self, incident_id: str, note: str) -> Incident:
        text = self._redactor().scrub(check_note(note), "note")
        incident = self.show(check_incident_id(incident_id))
        if incident.resolved_at is not None:
            at = f"{incident.resolved_at:%Y-%m-%d %H:%M} UTC"
            raise IncidentError(
                f"incident {incident_id} is closed already (at {at}); `claire incident show` "
                "has its timeline."
            )
        now = max(self.clock.now(), incident.opened_at)
        timeline = self.timeline(incident.incident_id)
        if not timeline.events():  # an incident known only to the database
            for event in incident.events:
                timeline.append(event.ts, event.kind, event.text, event.detail)
        from engine.ops.control import operator_name

        timeline.append(now, "closed", f"closed by {operator_name()}: {text}", {"note": text})
        detail = {**incident.detail, "closing_note": text}
        closed = replace(
            incident, resolved_at=now, detail=detail, events=tuple(timeline.events()), stored=False
        )
        return self._settle(closed)

    def _settle(self, incident: Incident) -> Incident:
        """Local record, the database (when it answers), then the reports."""
        from engine.incidents.report import write_reports

        reports = [str(self.report_path(incident.incident_id, f)) for f in ("md", "html")]
        incident = replace(incident, stored=False, detail={**incident.detail, "reports": reports})
        self._save(incident)
        if self.store is not None:
            incident = self._store(incident)
        try:
            write_reports(incident, self.folder, self._redactor().scrub)
        except Exception as exc:  # the incident itself must be kept all the same
            log.exception("could not write the report of incident %s", incident.incident_id)
            incident = replace(incident, detail={**incident.detail, "report_error": str(exc)})
            self._save(incident)
        return incident

    def _redactor(self) -> BundleRedactor:
        from engine.runtime.urls import password_of

        extra = [password_of(self.store.db.url) or ""] if self.store is not None else []
        return bundle_redactor(self.settings, extra)

    def open_for_alert(self, kind: IncidentType, alert: Alert, run_id: str) -> Incident:
        """The incident `INCIDENT_ON_ALERT` asks for when `alert` fires, logged."""
        cause = AlertCause(
            rule=alert.rule,
            episode_id=alert.episode_id or alert.event_id,
            message=alert.message,
            severity=alert.severity.value,
            market_ts=alert.ts,
        )
        incident = self.open(kind, run_id=run_id, alert=cause)
        log.warning(
            "incident %s (%s) opened by alert %s: %s",
            incident.incident_id,
            kind.label,
            alert.rule,
            incident.action_taken,
            extra={"event": "incident_opened", "incident_id": incident.incident_id},
        )
        return incident

    def emergency_bundle(self, run_id: str) -> Bundle:
        """The bundle an emergency stop leaves (`incidents/emergency-RUN-TIME.tar.gz`):
        what the run looked like when it was stopped, for the review that follows."""
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        name = f"emergency-{run_id}-{stamp}"
        return self._capture(name, run_id, self._services(run_id))

    def _capture(self, incident_id: str, run_id: str | None, services: bool) -> Bundle:
        source = BundleSource(
            data_dir=self.data_dir,
            settings=self.settings,
            run_id=run_id,
            store=self.store,
            store_error=self.store_error,
            now=self.clock.now(),
            services=services,
            rows=self.settings.incident_bundle_rows,
        )
        return capture(source, self.bundle_path(incident_id), self._redactor())

    # --- the database -----------------------------------------------------------------

    def _store(self, incident: Incident) -> Incident:
        """Write the record and its timeline; on failure it stays local, to write later."""
        assert self.store is not None
        record = incident.record()
        try:
            with self.store.db.transaction() as tx:
                tx.execute(
                    self._q["upsert_incident"],
                    {
                        **{k: record[k] for k in ("incident_id", "run_id", "type", "summary")},
                        "opened_at": incident.opened_at,
                        "resolved_at": incident.resolved_at,
                        "action_taken": incident.action_taken,
                        "bundle_path": incident.bundle_path,
                        "detail": json.dumps(record["detail"], sort_keys=True, default=str),
                    },
                )
                for event in incident.events:
                    tx.execute(
                        self._q["insert_incident_event"],
                        {
                            "incident_id": incident.incident_id,
                            "seq": event.seq,
                            "ts": event.ts,
                            "kind": event.kind,
                            "text": event.text,
                            "detail": json.dumps(plain(dict(event.detail)), default=str),
                        },
                    )
        except ClaireError as exc:
            log.warning("incident %s kept in %s only: %s", incident.incident_id, self.folder, exc)
            return incident
        stored = replace(incident, stored=True)
        self._save(stored)
        return stored

    def sync(self) -> list[str]:
        """Write every incident the database does not have yet; the ids written."""
        if self.store is None:
            return []
        done = []
        for incident_id in self._local_ids():
            incident = self._load(incident_id)
            if incident is not None and not incident.stored and self._store(incident).stored:
                done.append(incident_id)
        return done

    def pending(self) -> list[str]:
        """Incidents kept in the data folder only, waiting for the database."""
        out = []
        for incident_id in self._local_ids():
            incident = self._load(incident_id)
            if incident is not None and not incident.stored:
                out.append(incident_id)
        return out

    # --- reading ----------------------------------------------------------------------

    def list(self) -> list[Incident]:
        """Every incident, the database's and the folder's, oldest first."""
        found: dict[str, Incident] = {}
        if self.store is not None:
            for row in self.store.db.fetch_all(self._q["list_incidents"], {}):
                found[str(row["incident_id"])] = Incident.from_record({**row, "stored": True}, [])
        for incident_id in self._local_ids():
            local = self._load(incident_id)
            if local is not None and (incident_id not in found or not local.stored):
                found[incident_id] = local
        return sorted(found.values(), key=lambda i: (i.opened_at, i.incident_id))

    def show(self, incident_id: str) -> Incident:
        wanted = check_incident_id(incident_id)
        local = self._load(wanted)
        if local is not None:
            return local
        if self.store is not None:
            row = self.store.db.fetch_one(self._q["get_incident"], {"incident_id": wanted})
            if row is not None:
                events = [
                    TimelineEvent.from_json(e)
                    for e in self.store.db.fetch_all(
                        self._q["incident_events"], {"incident_id": wanted}
                    )
                ]
                return Incident.from_record({**row, "stored": True}, events)
        raise IncidentError(
            f"no incident {wanted} in {self.folder}; `claire incident list` shows them."
        )


def _why_opened(text: str | None, alert: AlertCause | None, who: str) -> tuple[str, str]:
    """Why the incident was opened, and the timeline's line for its opening."""
    if alert is not None:
        why = f"alert {alert.rule} fired: {alert.message}"
        return why, f"opened automatically: {why}"
    why = text or "opened by hand"
    return why, f"opened by {who}" + (f": {text}" if text else "")


def _opening_detail(
    text: str | None,
    alert: AlertCause | None,
    who: str,
    record: RunRecord | None,
    alive: bool,
    services: bool,
    service: str | None,
) -> dict[str, Any]:
    market_ts = alert.market_ts if alert and alert.market_ts else None
    if market_ts is None and record is not None:
        market_ts = record.last_event_ts
    detail: dict[str, Any] = {
        "opened_by": "alert" if alert else who,
        "note": text,
        "market_ts": market_ts.isoformat() if market_ts else None,
        "run_alive": alive,
        "services": services,
        "service": service,
    }
    if alert is not None:
        detail["alert"] = {
            "rule": alert.rule,
            "episode_id": alert.episode_id,
            "severity": alert.severity,
            "message": alert.message,
        }
    return detail


@contextmanager
def incident_desk(
    settings: Settings, data_dir: Path | str | None, clock: Clock | None = None
) -> Iterator[IncidentDesk]:
    """The data folder's desk, with its database if that answers (and the incidents kept
    while it did not, written now); without it otherwise. A folder without Claire data
    is an error (`NoDataError`)."""
    from engine.home.folder import resolve_data_dir
    from engine.report.access import open_data

    folder = resolve_data_dir(data_dir, settings)
    with ExitStack() as stack:
        store: Store | None = None
        error: str | None = None
        try:
            store = stack.enter_context(open_data(settings, folder)).store
        except StoreError as exc:
            error = str(exc)
        desk = IncidentDesk(folder, settings, store, store_error=error, clock=clock)
        desk.sync()
        yield desk


__all__ = [
    "FIRST_ACTIONS",
    "AlertCause",
    "Incident",
    "IncidentDesk",
    "IncidentError",
    "check_note",
    "incident_desk",
    "incident_queries",
]
