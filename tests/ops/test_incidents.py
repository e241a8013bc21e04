"""Incidents on a running run and on a finished one: the bundle, the first action, the
timeline in PostgreSQL, the reports; list, show and close; a database that is down."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.incident_kinds import TYPE_NAMES
from engine.runtime.files import free_port
from tests.cli.support import ETH, invoke, ok, ok_json, one_line
from tests.ops.test_detached_runs import gone, wait_until
from tests.store.conftest import (  # noqa: F401  (fixtures)
    db_url,
    pg_admin,
    pg_server,
    template_db,
)

pytestmark = pytest.mark.integration

# Every bundle holds these; `run_output` and `redis` depend on how the run runs.
ALWAYS = {
    "manifest.json",
    "status.json",
    "logs/claire.jsonl",
    "row_counts.json",
    "processes.json",
    "config.json",
    "events/runs.json",
}
RUN_TABLES = {
    "events/trades.json",
    "events/orders.json",
    "events/signals.json",
    "events/portfolio_snapshots.json",
    "events/risk_events.json",
    "events/alert_episodes.json",
    "events/service_events.json",
    "events/rejected_rows.json",
    "events/run_commands.json",
}


def bundle_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def check_bundle(incident: dict[str, Any], run_id: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    path = Path(incident["bundle_path"])
    assert path.parent.name == "incidents" and path.name == f"{incident['incident_id']}.tar.gz"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    files = bundle_files(path)
    manifest = json.loads(files["manifest.json"])
    assert set(files) >= ALWAYS | RUN_TABLES, sorted(set(ALWAYS | RUN_TABLES) - set(files))
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    for name, body in files.items():
        if name.endswith(".json"):
            json.loads(body)  # every JSON part is whole
    status = json.loads(files["status.json"])
    assert status["run_id"] == run_id
    counts = json.loads(files["row_counts.json"])
    snapshots = json.loads(files["events/portfolio_snapshots.json"])
    assert counts["portfolio_snapshots"] >= len(snapshots) > 0
    assert len(snapshots) <= 200
    assert snapshots == sorted(snapshots, key=lambda t: t["ts"], reverse=True)  # newest first
    assert counts["trades"] >= len(json.loads(files["events/trades.json"]))
    assert json.loads(files["events/runs.json"])["run_id"] == run_id
    logs = [json.loads(line) for line in files["logs/claire.jsonl"].splitlines()]
    assert logs and all(r["run_id"] == run_id for r in logs)
    figures = json.loads(files["processes.json"])
    assert figures["machine"]["disk"]["free_bytes"] > 0
    assert figures["top"]["memory"] and figures["top"]["cpu"]
    config = json.loads(files["config.json"])
    assert config["run_config"]["settings"]["initial_capital"] == "10"
    missing = {m["part"]: m["reason"] for m in manifest["missing"]}
    assert "redis" in missing and "one process" in missing["redis"]
    return files, figures


def incident_rows(home: Path, incident_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    with open_store(load_settings(), home) as (store, _):
        row = store.db.fetch_one("SELECT * FROM incidents WHERE incident_id = %s", (incident_id,))
        events = store.db.fetch_all(
            "SELECT kind FROM incident_events WHERE incident_id = %s ORDER BY seq", (incident_id,)
        )
    return row, [e["kind"] for e in events]


def trading_changes(home: Path, run_id: str) -> list[dict[str, Any]]:
    with open_store(load_settings(), home) as (store, _):
        return store.db.fetch_all(
            "SELECT reason, detail FROM risk_events WHERE run_id = %s AND kind = 'state_change' "
            "ORDER BY ts, event_id",
            (run_id,),
        )


def test_every_type_on_a_running_run_then_on_the_stopped_run(claire_home: Path) -> None:
    started = ok_json(
        "papertest", "start", "--replay", ETH, "--days", "7", "--capital", "10",
        "--speed", "3600x", "--detach",
    )  # fmt: skip
    run_id, pid = started["run_id"], started["pid"]

    opened: dict[str, dict[str, Any]] = {}
    for kind in TYPE_NAMES:
        body = ok_json("incident", "open", kind, "--note", f"checking {kind}")
        assert body["run_id"] == run_id and body["type"] == kind and body["status"] == "open"
        assert body["detail"]["run_alive"] is True
        opened[kind] = body
    # risk-limit stops new entries: trading halted, with the incident in the note.
    halt = opened["risk-limit"]["detail"]["first_action"]
    assert halt["taken"] is True and "trading halted" in halt["result"]
    [change] = [c for c in trading_changes(claire_home, run_id) if c["reason"] == "operator_halt"]
    assert opened["risk-limit"]["incident_id"] in change["detail"]["note"]
    status = invoke("status", "--json")
    assert status.exit_code == 1  # degraded: trading is halted
    assert json.loads(status.stdout)["trading_state"] == "halted"
    # A replay has no live feed; a run in one process has no service to restart.
    data_stop = opened["data-stop"]["detail"]["first_action"]
    assert data_stop["taken"] is False and "no live feed" in data_stop["result"]
    for kind in ("service-crash", "unresponsive"):
        action = opened[kind]["detail"]["first_action"]
        assert action["taken"] is False and "is one process" in action["result"]
    database = opened["database-outage"]["detail"]["first_action"]
    assert database["detail"]["database"] == "up" and "nothing to hold" in database["result"]
    shortage = opened["resource-shortage"]["detail"]["first_action"]
    assert shortage["taken"] is True and shortage["detail"]["top"]["memory"]
    assert "disk of the data folder" in shortage["result"]
    for kind, body in opened.items():
        files, figures = check_bundle(body, run_id)
        # The detached run's own output and its process are in the bundle.
        assert "logs/run.log" in files, kind
        assert [p["pid"] for p in figures["run_processes"] if p["role"] == "run"] == [pid]
        row, kinds = incident_rows(claire_home, body["incident_id"])
        assert row is not None and row["type"] == kind.replace("-", "_").replace(
            "unresponsive", "unresponsive_service"
        )
        assert kinds == ["opened", "bundle", "action"]
        report = Path(body["detail"]["reports"][0]).read_text()
        assert body["incident_id"] in report and "## Open questions" in report
        assert Path(body["detail"]["reports"][1]).read_text().startswith("<!doctype html>")

    # Asked anyway, a replay refuses to reconnect: it has no live feed.
    from engine.ops.commands import Operator
    from engine.ops.control import CommandKind, CommandStatus

    with open_store(load_settings(), claire_home) as (store, _):
        answer = Operator(store, claire_home).command(CommandKind.RECONNECT, "try", run_id)
    assert answer.status is CommandStatus.REFUSED
    assert answer.result["reason"] == (
        "the run replays recorded data: there is no live feed to reconnect"
    )

    stopped = ok_json("papertest", "stop", "--emergency", "--reason", "incident drill")
    assert stopped["status"] == "done"
    wait_until(lambda: gone(pid), "the run's process to end")
    for kind in TYPE_NAMES:
        body = ok_json("incident", "open", kind)
        assert body["run_id"] == run_id and body["detail"]["run_alive"] is False
        action = body["detail"]["first_action"]
        if kind == "resource-shortage":
            assert action["taken"] is True
        elif kind == "database-outage":
            assert action["taken"] is False and "is not running" in action["result"]
        else:
            assert action["taken"] is False and "not running (stopped)" in action["result"]
        check_bundle(body, run_id)

    # list, show, close through the command line.
    listed = ok_json("incident", "list")
    assert len(listed) == 12 and [i["incident_id"] for i in listed] == sorted(
        i["incident_id"] for i in listed
    )
    first = listed[0]["incident_id"]
    table = ok("incident", "list").stdout
    assert first in table and "risk-limit" in table
    shown = ok("incident", "show", first).stdout
    assert "opened" in shown and "bundle" in shown and "action" in shown
    closed = ok_json("incident", "close", first, "--note", "drill over")
    assert closed["status"] == "closed" and closed["timeline"][-1]["kind"] == "closed"
    assert "drill over" in Path(closed["detail"]["reports"][0]).read_text()
    assert "| status | closed" in Path(closed["detail"]["reports"][0]).read_text()
    row, kinds = incident_rows(claire_home, first)
    assert row is not None and row["resolved_at"] is not None and kinds[-1] == "closed"
    again = invoke("incident", "close", first, "--note", "twice")
    assert again.exit_code == 1 and "closed already" in one_line(again.output)
    assert ok_json("incident", "show", first)["status"] == "closed"

    # The final report lists them, the way they are typed.
    final = json.loads(ok("report", "--final", "--json").stdout)
    assert len(final["incidents"]) == 12
    assert {i["type"] for i in final["incidents"]} == set(TYPE_NAMES)
    assert "risk-limit" in ok("report", "--final").stdout


def test_bad_input_gets_one_sentence_and_exit_1(claire_home: Path) -> None:
    ok("papertest", "start", "--replay", ETH, "--days", "1", "--capital", "10", "--json")
    unknown = invoke("incident", "open", "meteor-strike")
    assert unknown.exit_code == 1
    assert one_line(unknown.output) == (
        "error: incident type 'meteor-strike' is unknown; use one of service-crash, risk-limit, "
        "unresponsive, database-outage, resource-shortage, data-stop."
    )
    empty = invoke("incident", "open", "risk-limit", "--note", "  ")
    assert empty.exit_code == 1 and "--note is empty" in one_line(empty.output)
    no_run = invoke("incident", "open", "risk-limit", "--run", "run-nope")
    assert no_run.exit_code == 1 and "no run run-nope" in one_line(no_run.output)
    missing = invoke("incident", "show", "INC-20260101-0001")
    assert missing.exit_code == 1 and "no incident INC-20260101-0001" in one_line(missing.output)
    malformed = invoke("incident", "show", "42")
    assert malformed.exit_code == 1 and "not an incident id" in one_line(malformed.output)
    assert not (claire_home / "incidents").exists() or not list(
        (claire_home / "incidents").glob("*.tar.gz")
    )  # nothing was opened by a refused command


def test_a_database_outage_still_writes_the_bundle_and_the_timeline_later(
    db_url: str,  # noqa: F811
    claire_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A run in the database, which then stops answering (a port nobody listens on).
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", db_url)
    run = ok_json("papertest", "start", "--replay", ETH, "--days", "1", "--capital", "10")
    down = f"postgresql://claire:DownPw0rdMARK@127.0.0.1:{free_port()}/claire"
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", down)
    result = invoke("incident", "open", "database-outage", "--run", run["run_id"], "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert "the database did not answer" in result.stderr
    action = body["detail"]["first_action"]
    assert action["detail"]["database"] == "down" and "does not answer" in action["result"]
    assert body["stored"] is False
    files = bundle_files(Path(body["bundle_path"]))
    manifest = json.loads(files["manifest.json"])
    missing = {m["part"]: m["reason"] for m in manifest["missing"]}
    assert {"status", "events"} <= set(missing)
    assert "the database did not answer" in missing["events"]
    assert {"logs/claire.jsonl", "processes.json", "config.json"} <= set(files)
    assert not [name for name, text in files.items() if b"DownPw0rdMARK" in text]
    timeline = Path(body["bundle_path"]).with_name(f"{body['incident_id']}.timeline.jsonl")
    assert [json.loads(line)["kind"] for line in timeline.read_text().splitlines()] == [
        "opened",
        "bundle",
        "action",
    ]
    listed = invoke("incident", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["stored"] is False
    assert "DownPw0rdMARK" not in result.output + listed.output

    # The database answers again: the next incident command writes what was kept.
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", db_url)
    [again] = ok_json("incident", "list")
    assert again["incident_id"] == body["incident_id"] and again["stored"] is True
    from engine.store import Store

    with Store.open(db_url, migrate=False) as store:
        row = store.db.fetch_one(
            "SELECT type, run_id FROM incidents WHERE incident_id = %s", (body["incident_id"],)
        )
        kinds = [
            r["kind"]
            for r in store.db.fetch_all(
                "SELECT kind FROM incident_events WHERE incident_id = %s ORDER BY seq",
                (body["incident_id"],),
            )
        ]
    assert row == {"type": "database_outage", "run_id": run["run_id"]}
    assert kinds == ["opened", "bundle", "action"]
