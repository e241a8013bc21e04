"""The runbook on a live Docker stack fed by the local MEXC server: up, status, halt and
resume, a backup, a service-crash incident, a daily report and a planned stop, every
command through `--stack` and the stack's steward container, with no URL typed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import docker
import pytest

from engine.run.stack_runs import run_progress
from engine.stack.config import StackConfig
from engine.stack.containers import service_logs
from engine.stack.spec import ENGINE_SERVICES
from engine.store import RunStatus, Store
from tests.mexc_server import MexcServer
from tests.services.test_live_services import ServerThread
from tests.services.test_services_runbook import wait_until
from tests.stack.test_stack_run import (  # noqa: F401 - stack_env is a fixture
    UP_TIMEOUT,
    claire,
    container,
    remove_stack,
    stack_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.docker]


@pytest.fixture
def live_exchange(
    stack_env: dict[str, str],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MexcServer]:
    """The local MEXC server, reached by the containers on the host's network."""
    # Candles from now on: the run's first market day starts as it does and ends within
    # half a minute (a 5-minute window every 0.1 s).
    running = ServerThread(candles_from_ms=int(time.time() * 1000))
    try:
        settings = {
            **running.server.env(),
            "CLAIRE_EXCHANGE": "mexc",
            "CLAIRE_MARKET": "spot",
            "CLAIRE_SYMBOLS": "ETHBTC,LTCBTC",  # the local server's symbols with candles
            # About half an hour of wall time: the planned stop comes long before the
            # planned end, where the steward would record the run completed.
            "CLAIRE_LIVE_DAYS": "60",
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        yield running.server
    finally:
        running.close()


def ok_json(*args: str) -> Any:
    result = claire(*args, "--stack", "--json")
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.stdout)


def test_the_runbook_on_a_live_stack_through_its_steward(
    stack_env: dict[str, str],  # noqa: F811 - the fixture imported above
    live_exchange: MexcServer,
    docker_host: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = docker.DockerClient(base_url=docker_host)
    monkeypatch.setenv("CLAIRE_COMPOSE_DIR", str(tmp_path))  # no .env of the developer's
    run_id = stack_env["CLAIRE_RUN_ID"]
    stack_url = (
        f"postgresql://claire:{stack_env['POSTGRES_PASSWORD']}@127.0.0.1:"
        f"{stack_env['POSTGRES_PORT']}/claire"
    )
    try:
        up = claire("stack", "up", "--no-monitoring", "--timeout", UP_TIMEOUT)
        assert up.exit_code == 0, up.output
        assert "live" in up.output and "ETHBTC" in up.output, up.output
        config = StackConfig.load(tmp_path)
        try:
            wait_until(
                lambda: run_progress(config)["published"] > 0, "the live feed's first time", 180
            )
        except AssertionError as exc:
            logs = {n: service_logs(n, tail=40) for n in ("cdb_init", "cdb_ws")}
            raise AssertionError(f"{exc}\n{json.dumps(logs, indent=1)}") from None

        def healthy() -> Any:
            rows = json.loads(claire("stack", "ps", "--json").stdout)
            engine = [r for r in rows if r["service"] in ENGINE_SERVICES]
            steward = [r for r in rows if r["service"] == "cdb_steward"]
            return (
                len(engine) == len(ENGINE_SERVICES)
                and all(r["health"] == "healthy" for r in engine + steward)
                and rows
            )

        wait_until(healthy, "every container healthy", 180)
        status = claire("status", "--stack", "--json")
        assert status.exit_code in (0, 1), status.output  # a 2019 tape reads as behind
        shown = json.loads(status.stdout)
        assert (shown["run_id"], shown["status"]) == (run_id, "running"), shown

        halted = ok_json("risk", "halt", "--note", "checking the feed")
        assert halted["status"] == "done" and halted["result"]["trading_state"] == "halted"
        resumed = ok_json("risk", "resume", "--note", "the feed is fine")
        assert resumed["status"] == "done" and resumed["result"]["trading_state"] == "active"

        backup = ok_json("backup", "create")
        assert Path(backup["file"]).is_file() and backup["run_id"] == run_id
        [verified] = ok_json("backup", "verify", backup["name"])
        assert verified["ok"] is True

        started = container(client, "cdb_risk").attrs["State"]["StartedAt"]
        incident = ok_json("incident", "open", "service-crash", "--service", "risk")
        said = json.dumps(incident)
        assert "cdb_risk" in said and "restarted through Docker" in said, said
        assert container(client, "cdb_risk").attrs["State"]["StartedAt"] != started

        def past_day_1() -> bool:  # the run's first market day has ended
            with Store.open(stack_url, external=True) as store:
                run = store.get_run(run_id)
            last = run.last_event_ts if run else None
            if last is None or run is None:
                return False
            return last.astimezone(UTC).date() > run.started_at.astimezone(UTC).date()

        wait_until(past_day_1, "the end of the first market day", 180)
        # The steward writes each day's report as the day ends, in the stack's volume.
        written = f"/var/lib/claire/reports/{run_id}/day-01.json"
        steward = container(client, "cdb_steward")
        wait_until(
            lambda: in_volume(steward, written),
            "the steward's report of day 1",
            180,
        )
        day = claire("report", "--stack", "--day", "1", "--format", "json")
        assert day.exit_code == 0, day.output
        assert json.loads(day.stdout)["run_id"] == run_id

        stopped = ok_json("papertest", "stop", "--reason", "end of the test")
        assert stopped["status"] == "done", stopped
        result = stopped["result"]
        assert result["status"] == "stopped" and result["open_positions"] == []
        for made in (result["backup"], result["report"]):  # written in the stack's volume
            assert in_volume(steward, made), made
        with Store.open(stack_url, external=True) as store:
            run = store.get_run(run_id)
        assert run is not None and run.status is RunStatus.STOPPED
        assert "planned stop" in (run.end_reason or "")
        # The services stay up, idle; a command now names the run as stopped.
        assert all(container(client, n).status == "running" for n in ENGINE_SERVICES)
        again = claire("risk", "halt", "--note", "late", "--stack", "--run", run_id)
        assert again.exit_code == 1 and "is not running (stopped)" in again.stderr

        down = claire("stack", "down")
        assert down.exit_code == 0, down.output
    finally:
        remove_stack(client)


def in_volume(container: Any, path: str) -> bool:
    """Whether `path` is a file with something in it, inside the container."""
    size = (
        "import os, sys; p = sys.argv[1]; sys.exit(not os.path.isfile(p) or not os.path.getsize(p))"
    )
    return int(container.exec_run(["python", "-c", size, path]).exit_code) == 0
