"""A service-crash incident on a run as separate services: the service is restarted by
the supervisor (recorded in service_events), and the bundle holds the Redis streams."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.cli.support import invoke, ok_json
from tests.ops.test_incidents import bundle_files
from tests.paperrun.runs import claire_process, query
from tests.services.test_services_run import (
    _service_pid,
    finish,
    replay_args,
    service_events,
    wait_for_service,
)

pytestmark = pytest.mark.integration


@pytest.mark.services
def test_a_service_crash_incident_restarts_the_named_service(
    four_symbols: list[Path], claire_home: Path
) -> None:
    child = claire_process(replay_args(four_symbols[:2], "7", "--services", "--speed", "5000x"))
    try:
        run_id = wait_for_service(child, claire_home, "risk")
        deadline = time.monotonic() + 60
        while not query(claire_home, "SELECT 1 FROM signals LIMIT 1"):  # the pipeline flows
            assert child.poll() is None and time.monotonic() < deadline, "no signal yet"
            time.sleep(0.2)
        before = _service_pid(run_id, "risk")
        result = invoke(
            "incident", "open", "service-crash", "--service", "risk", "--note", "drill", "--json"
        )
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        unnamed = invoke("incident", "open", "service-crash", "--service", "nope")
    finally:
        child.send_signal(signal.SIGTERM)
        finish(child, timeout=120)
    assert body["run_id"] == run_id and body["detail"]["services"] is True
    action = body["detail"]["first_action"]
    assert action["taken"] is True, action
    assert action["detail"]["old_pid"] == before and action["detail"]["new_pid"] not in (
        None,
        before,
    )
    assert f"pid {before} -> " in action["result"]
    kinds = [(e["service"], e["kind"], e["pid"]) for e in service_events(claire_home, run_id)]
    assert ("risk", "exit", before) in kinds
    assert ("risk", "restart", action["detail"]["new_pid"]) in kinds
    files = bundle_files(Path(body["bundle_path"]))
    assert {"redis/groups.json", "redis/market_data.json", "redis/orders.json"} <= set(files)
    groups = json.loads(files["redis/groups.json"])
    assert any(g["name"] == "risk" for g in groups["signals"])
    assert "logs/services/risk.log" in files
    assert "events/service_events.json" in files
    assert unnamed.exit_code == 1 and "--service nope is not one of the services" in unnamed.output
    assert [i["incident_id"] for i in ok_json("incident", "list")] == [body["incident_id"]]
