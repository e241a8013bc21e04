"""The runbook on a live run as services, fed by the local MEXC server: detached,
watched, halted and resumed, its feed reconnected, backed up, and stopped as planned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.ops.backups import BackupFolder
from engine.runtime.files import free_port
from engine.services.host import SERVICES
from tests.cli.support import invoke, ok_json
from tests.mexc_server import MexcServer
from tests.services.test_live_services import STRATEGY, exchange  # noqa: F401 - the fixture
from tests.services.test_services_runbook import rows, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.services
def test_the_runbook_on_a_detached_live_services_run(
    exchange: MexcServer,  # noqa: F811 - the fixture imported above
    claire_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "scheduled.py").write_text(STRATEGY, encoding="utf-8")
    for name, value in {
        **exchange.env(),  # CLAIRE_MEXC_*_URL reach the detached supervisor and its feed
        "CLAIRE_SERVICE_PORT_BASE": str(free_port()),
        "FEED_WATERMARK_MS": "100",
        "STALE_DATA_SECONDS": "3600",
        "PARTICIPATION_CAP_PCT": "0.5",
    }.items():
        monkeypatch.setenv(name, value)
    started = ok_json(
        "papertest", "start", "--services", "--exchange", "mexc", "--market", "spot",
        "--symbols", "XRPETH", "--timeframe", "none", "--capital", "10",
        "--strategy", f"{tmp_path / 'scheduled.py'}:Scheduled", "--detach",
    )  # fmt: skip
    run_id, pid = started["run_id"], started["pid"]
    try:
        _operate(claire_home, run_id)
        assert wait_until(lambda: _ended(pid), "the supervisor's end", 120)
    finally:
        if psutil.pid_exists(pid):  # a failed step leaves no run behind
            psutil.Process(pid).terminate()
            psutil.Process(pid).wait(60)


def _ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # not reaped by us
    except psutil.NoSuchProcess:
        return True


def _operate(home: Path, run_id: str) -> None:
    def healthy() -> Any:
        # Every service answers healthy. The run itself reads as behind: the local
        # server plays 2019's trades, so market time trails the wall clock by years.
        body = json.loads(invoke("status", "--json").stdout)
        services = body.get("services") or []
        up = all(s["health"] == "healthy" for s in services)
        return up and len(services) == len(SERVICES) and body

    body = wait_until(healthy, "every service healthy")
    assert body["run_id"] == run_id and body["status"] == "running"

    halted = ok_json("risk", "halt", "--note", "checking the feed")
    assert halted["status"] == "done" and halted["result"]["trading_state"] == "halted"
    resumed = ok_json("risk", "resume", "--note", "feed is fine")
    assert resumed["status"] == "done" and resumed["result"]["trading_state"] == "active"

    # The data-stop incident's action: the feed drops its sockets, which reconnect.
    opened = invoke("incident", "open", "data-stop", "--json")
    assert opened.exit_code == 0, opened.output
    incident = json.loads(opened.stdout)
    assert "reconnect" in json.dumps(incident), incident
    [done] = rows(
        home,
        "SELECT status, result FROM run_commands WHERE run_id = %(r)s AND command = 'reconnect'",
        r=run_id,
    )
    assert done["status"] == "done" and done["result"]["sockets"] >= 1, done

    made = ok_json("backup", "create")
    assert made["run_id"] == run_id
    backups = {b.manifest.reason for b in BackupFolder(home / "backups").backups()}
    assert {"run-start", "manual"} <= backups  # a live run's first before its first event

    stopped = ok_json("papertest", "stop", "--reason", "end of the live test")
    assert stopped["status"] == "done", stopped
    result = stopped["result"]
    assert result["status"] == "stopped" and result["open_positions"] == []
    assert Path(result["backup"]).is_file() and Path(result["report"]).is_file()
