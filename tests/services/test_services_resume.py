"""A run as services continues after its supervisor is killed (the machine went down)
or stopped: `claire papertest start --services --resume` takes up the state its services
kept in Redis, and the fills are those of one uninterrupted process."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine.services.host import SERVICES
from tests.cli.support import invoke
from tests.paperrun.runs import claire_process
from tests.services.test_services_run import (
    _newest_run,
    _service_pid,
    finish,
    in_process_fills,
    replay_args,
    runs_and_fills,
    service_events,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.services]


def started_replay(files: list[Path], home: Path) -> tuple[Any, str]:
    """A 2-day replay as services, paced to last about 17 s; once every service is up."""
    child = claire_process(replay_args(files, "2", "--services", "--speed", "20000x", "--json"))
    return child, _started(child, home)


def _started(child: object, home: Path) -> str:
    deadline = time.monotonic() + 90
    while True:
        run_id = _newest_run(home)
        if run_id is not None and all(_service_pid(run_id, s) for s in SERVICES):
            return run_id
        assert child.poll() is None, child.communicate()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the services never started"
        time.sleep(0.1)


def test_a_services_run_whose_supervisor_was_killed_resumes_to_the_fills_of_one_process(
    four_symbols: list[Path], claire_home: Path
) -> None:
    files = four_symbols[:2]
    child, run_id = started_replay(files, claire_home)
    time.sleep(2)  # mid-run
    os.kill(child.pid, signal.SIGKILL)  # no time to stop anything: its services go with it
    child.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while any(_service_pid(run_id, s) for s in SERVICES):
        assert time.monotonic() < deadline, "services outlived their supervisor"
        time.sleep(0.1)

    # Status names the resume of a run as services.
    status = invoke("status", "--json")
    said = " ".join(json.loads(status.stdout)["reasons"])
    assert f"claire papertest start --services --resume --run {run_id}" in said
    # In one process it is refused, with the command that continues it.
    alone = invoke("papertest", "start", "--resume", "--run", run_id)
    assert alone.exit_code == 1
    assert "--services --resume" in alone.output and "Traceback" not in alone.output

    resumed = claire_process(["papertest", "start", "--services", "--resume", "--run", run_id,
                              "--json"])  # fmt: skip
    code, out, err = finish(resumed)
    assert code == 0, err
    body = json.loads(out)
    assert (body["run_id"], body["status"]) == (run_id, "completed")
    assert runs_and_fills(claire_home)[run_id] == in_process_fills(files, "2", claire_home)
    starts = [e for e in service_events(claire_home, run_id) if e["kind"] == "start"]
    assert len(starts) == 2 * len(SERVICES)  # each service started once by each supervisor


def test_a_stopped_services_run_resumes_detached_and_completes(
    four_symbols: list[Path], claire_home: Path
) -> None:
    files = four_symbols[:2]
    child, run_id = started_replay(files, claire_home)
    time.sleep(1.5)
    child.send_signal(signal.SIGTERM)
    code, out, err = finish(child, timeout=60)
    assert code == 128 + signal.SIGTERM, err
    assert json.loads(out)["status"] == "stopped"

    detached = invoke("papertest", "start", "--services", "--resume", "--detach", "--json")
    assert detached.exit_code == 0, detached.output
    started = json.loads(detached.stdout)
    assert started["run_id"] == run_id and started["status"] in ("running", "completed")
    pid = started["pid"]
    deadline = time.monotonic() + 240
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the resumed run did not finish"
        time.sleep(0.3)
    assert runs_and_fills(claire_home)[run_id] == in_process_fills(files, "2", claire_home)
    final = json.loads(invoke("papertest", "status", "--json").stdout)
    assert any(r["run_id"] == run_id and r["status"] == "completed" for r in final), final
