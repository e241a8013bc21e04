"""The runbook on a run as services: detached, watched, halted, resumed, backed up,
an incident, a daily report, and a planned stop that closes out."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.runtime.files import free_port
from engine.services.host import SERVICES
from tests.cli.support import invoke, ok, ok_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wait_until(test: Any, what: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = test()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def rows(home: Path, sql: str, **params: Any) -> list[dict[str, Any]]:
    with open_store(load_settings(), home) as (store, _):
        return store.db.fetch_all(sql, params)


def market_time(home: Path, run_id: str) -> datetime | None:
    found = rows(home, "SELECT last_event_ts FROM runs WHERE run_id = %(r)s", r=run_id)
    return found[0]["last_event_ts"] if found else None


def entry_fills_between(home: Path, run_id: str, after: datetime, upto: datetime) -> list[Any]:
    return rows(
        home,
        "SELECT t.trade_id FROM trades t JOIN orders o"
        " ON o.run_id = t.run_id AND o.order_id = t.order_id"
        " WHERE t.run_id = %(r)s AND o.intent = 'entry' AND t.ts > %(a)s AND t.ts <= %(u)s",
        r=run_id,
        a=after,
        u=upto,
    )


@pytest.mark.services
def test_the_runbook_on_a_detached_services_run(
    four_symbols: list[Path], claire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIRE_SERVICE_PORT_BASE", str(free_port()))
    args = ["papertest", "start", "--services", "--days", "7", "--capital", "10"]
    for path in four_symbols:
        args += ["--replay", str(path)]
    started = ok_json(*args, "--speed", "2000x", "--detach")
    run_id, pid = started["run_id"], started["pid"]
    try:
        _operate(claire_home, run_id)
    finally:
        if psutil.pid_exists(pid):  # a failed step leaves no run behind
            psutil.Process(pid).terminate()
            psutil.Process(pid).wait(60)


def _operate(home: Path, run_id: str) -> None:
    # Every service is up and answers its /health; the run's own figures are there.
    def healthy() -> Any:
        result = invoke("status", "--json")
        body = json.loads(result.stdout)
        services = body.get("services") or []
        ok = result.exit_code == 0 and all(s["health"] == "healthy" for s in services)
        return ok and len(services) == len(SERVICES) and body

    body = wait_until(healthy, "every service healthy")
    assert body["run_id"] == run_id and body["status"] == "running"
    assert all(isinstance(s["pid"], int) and s["restarts"] == 0 for s in body["services"])
    assert body["equity"] is not None and body["exposure_frac"] is not None
    assert all(s["age_s"] >= 0 for s in body["symbols"])
    run = next(p for p in body["processes"] if p["name"] == "run")
    assert run["alive"] and isinstance(run["pid"], int)

    halted = ok_json("risk", "halt", "--note", "checking the feed")
    assert halted["status"] == "done" and halted["result"]["trading_state"] == "halted"
    halt_ts = datetime.fromisoformat(halted["market_ts"])
    wait_until(lambda: (market_time(home, run_id) or halt_ts) > halt_ts + timedelta(hours=3), "3 h")
    resumed = ok_json("risk", "resume", "--note", "the feed is fine")
    assert resumed["status"] == "done" and resumed["result"]["trading_state"] == "active"
    resume_ts = datetime.fromisoformat(resumed["market_ts"])
    assert resume_ts > halt_ts
    assert entry_fills_between(home, run_id, halt_ts, resume_ts) == []
    changes = rows(
        home,
        "SELECT ts, reason, detail->>'note' AS note FROM risk_events"
        " WHERE run_id = %(r)s AND kind = 'state_change' AND reason LIKE 'operator%%' ORDER BY ts",
        r=run_id,
    )
    assert [(c["reason"], c["note"], c["ts"]) for c in changes] == [
        ("operator_halt", "checking the feed", halt_ts),
        ("operator_resume", "the feed is fine", resume_ts),
    ]

    backup = ok_json("backup", "create")
    assert Path(backup["file"]).is_file() and backup["run_id"] == run_id
    [verified] = ok_json("backup", "verify", backup["name"])
    assert verified["ok"] is True

    incident = invoke("incident", "open", "service-crash", "--service", "risk", "--json")
    assert incident.exit_code == 0, incident.stderr
    wait_until(
        lambda: rows(
            home,
            "SELECT 1 FROM service_events WHERE run_id = %(r)s AND service = 'risk'"
            " AND kind = 'restart'",
            r=run_id,
        ),
        "the risk service restarted",
    )

    first_day_over = halt_ts.replace(hour=0, minute=0) + timedelta(days=1, hours=1)
    wait_until(lambda: (market_time(home, run_id) or halt_ts) > first_day_over, "day 1 done")
    day = ok("report", "--day", "1", "--json")
    assert json.loads(day.stdout)["day"] == 1

    stopped = ok_json("papertest", "stop", "--reason", "end of the runbook")
    assert stopped["status"] == "done"
    result = stopped["result"]
    assert result["status"] == "stopped" and result["open_positions"] == []
    assert result["end_reason"].endswith(": end of the runbook")
    assert Path(result["report"]).is_file() and Path(result["backup"]).is_file()
    assert "planned-stop" in Path(result["backup"]).name
    [record] = rows(home, "SELECT status FROM runs WHERE run_id = %(r)s", r=run_id)
    assert record["status"] == "stopped"
    final = rows(
        home,
        "SELECT 1 FROM portfolio_snapshots WHERE run_id = %(r)s AND cause_id = 'run-end'",
        r=run_id,
    )
    assert final


@pytest.mark.services
def test_a_services_run_refuses_reconnect_and_stops_at_once_on_an_emergency(
    four_symbols: list[Path], claire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.ops.commands import Operator
    from engine.ops.control import CommandKind
    from engine.run.services_steward import NO_LIVE_FEED
    from tests.paperrun.runs import claire_process

    monkeypatch.setenv("CLAIRE_SERVICE_PORT_BASE", str(free_port()))
    args = ["papertest", "start", "--services", "--days", "7", "--capital", "10"]
    for path in four_symbols:
        args += ["--replay", str(path)]
    child = claire_process([*args, "--speed", "2000x", "--json"])
    try:
        run_id = wait_until(
            lambda: (
                (r := rows(claire_home, "SELECT run_id FROM runs WHERE last_event_ts IS NOT NULL"))
                and r[0]["run_id"]
            ),
            "the first market event",
        )
        with open_store(load_settings(), claire_home) as (store, _):
            answer = Operator(store, claire_home).command(
                CommandKind.RECONNECT, "the feed is quiet"
            )
        assert answer.status.value == "refused" and answer.result["reason"] == NO_LIVE_FEED
        stopped = ok_json("papertest", "stop", "--emergency", "--reason", "smoke in the room")
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.terminate()
            child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert json.loads(out)["status"] == "stopped"
    result = stopped["result"]
    assert result["status"] == "stopped" and "emergency-stop" in Path(result["backup"]).name
    assert result["end_reason"].endswith(": smoke in the room")
    assert Path(stopped["bundle"]).is_file()
    [record] = rows(claire_home, "SELECT status FROM runs WHERE run_id = %(r)s", r=run_id)
    assert record["status"] == "stopped"
