"""A run survives its database: killed connections, a restarted server, a longer outage."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from claire_cli.main import app
from engine.runtime import EmbeddedPostgres
from tests.paperrun.runs import (
    Fill,
    claire_process,
    query,
    replay_args,
    stored_fills,
    unbroken_fills,
    wait_for_checkpoint,
)

pytestmark = pytest.mark.integration
runner = CliRunner()
DAYS = 2
# Paced so the run takes a few seconds: faults land in the middle of it.
PACED = ("--json", "--speed", "40000x")


@pytest.fixture(scope="module")
def two_symbols(four_symbols: list[Path]) -> list[Path]:
    return four_symbols[:2]


@pytest.fixture(scope="module")
def expected(two_symbols: list[Path]) -> list[Fill]:
    fills = unbroken_fills(two_symbols, DAYS)
    assert len(fills) > 5
    return fills


def terminate_backends(home: Path) -> int:
    rows = query(
        home,
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
        "WHERE application_name = 'claire' AND pid <> pg_backend_pid()",
    )
    return int(rows[0]["n"]) if rows else 0


def test_killed_connections_mid_run_do_not_break_it(
    two_symbols: list[Path], claire_home: Path, expected: list[Fill]
) -> None:
    child = claire_process(replay_args(two_symbols, *PACED, days=str(DAYS)))
    wait_for_checkpoint(child, claire_home, 200)
    killed = terminate_backends(claire_home)
    time.sleep(0.3)
    killed += terminate_backends(claire_home)
    out, err = child.communicate(timeout=120)

    assert killed >= 1
    assert child.returncode == 0, err
    run = json.loads(out)
    assert run["status"] == "completed"
    assert stored_fills(claire_home, run["run_id"]) == expected
    assert "Traceback" not in err and "psycopg" not in err


def test_a_server_restarted_mid_run_does_not_break_it(
    two_symbols: list[Path], claire_home: Path, expected: list[Fill]
) -> None:
    child = claire_process(replay_args(two_symbols, *PACED, days=str(DAYS)))
    wait_for_checkpoint(child, claire_home, 200)
    operator = EmbeddedPostgres(claire_home)
    operator.start()  # joins the run's server
    before = operator.pid
    operator.restart()
    assert operator.pid != before
    operator.stop()  # the run still uses it: the server stays up
    assert operator.is_running()
    out, err = child.communicate(timeout=120)

    assert child.returncode == 0, err
    run = json.loads(out)
    assert run["status"] == "completed"
    assert stored_fills(claire_home, run["run_id"]) == expected


def test_an_outage_longer_than_the_tolerance_interrupts_the_run_resumably(
    two_symbols: list[Path], claire_home: Path, expected: list[Fill]
) -> None:
    child = claire_process(
        replay_args(two_symbols, *PACED, days=str(DAYS)),
        env={"DB_OUTAGE_TOLERANCE_SECONDS": "1"},
    )
    wait_for_checkpoint(child, claire_home, 200)
    operator = EmbeddedPostgres(claire_home)
    operator.start()
    operator.shutdown()  # stopped for everyone, and nobody starts it again
    out, err = child.communicate(timeout=120)

    assert child.returncode == 1
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    [error] = [line for line in lines if line.startswith("error:")]
    assert "is interrupted" in error and "claire papertest start --resume" in error
    assert "unreachable for" in error
    assert len(lines) <= 2, err  # the outage warning and the error, nothing else
    for noise in ("Traceback", "psycopg", "CLAIRE_POSTGRES_URL", "pool"):
        assert noise not in err

    status = runner.invoke(app, ["papertest", "status", "--json"])
    assert status.exit_code == 0, status.output
    [interrupted] = json.loads(status.output)
    assert interrupted["status"] == "interrupted"

    resumed = runner.invoke(app, ["papertest", "start", "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    body = json.loads(resumed.output)
    assert body["run_id"] == interrupted["run_id"] and body["status"] == "completed"
    assert body["resumed_after_events"] >= 200
    assert stored_fills(claire_home, body["run_id"]) == expected


def test_sigterm_stops_the_run_recorded_and_resumable(
    two_symbols: list[Path], claire_home: Path, expected: list[Fill]
) -> None:
    child = claire_process(replay_args(two_symbols, *PACED, days=str(DAYS)))
    wait_for_checkpoint(child, claire_home, 200)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 143, err  # 128 + SIGTERM, as service managers expect
    assert "stopped by SIGTERM" in out and "papertest start --resume" in out
    assert "Traceback" not in err
    status = runner.invoke(app, ["papertest", "status", "--json"])
    [stopped] = json.loads(status.output)
    assert stopped["status"] == "stopped"

    resumed = runner.invoke(app, ["papertest", "start", "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    body = json.loads(resumed.output)
    assert body["run_id"] == stopped["run_id"] and body["status"] == "completed"
    assert stored_fills(claire_home, body["run_id"]) == expected
