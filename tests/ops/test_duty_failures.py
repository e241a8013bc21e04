"""A duty that fails in the background (a backup, a report) is never a silent success:
the run's summary says so, and preflight says no-go to a BACKUP_DIR that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.alerts.receiver import closed_port, receiver
from tests.cli.support import ETH, invoke

pytestmark = pytest.mark.integration

BASE = ["papertest", "start", "--replay", str(ETH), "--days", "1", "--speed", "max"]
BASE += ["--capital", "10"]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-folder"
    path.write_text("")
    return path


def test_a_backup_dir_that_is_a_file_is_refused_as_a_setting(
    a_file: Path, claire_home: Path
) -> None:
    result = invoke(*BASE, env={"BACKUP_DIR": str(a_file)})
    assert result.exit_code == 1
    assert "BACKUP_DIR=" in result.stderr and "names a file; give a folder" in result.stderr


def test_preflight_says_no_go_when_backup_dir_is_under_a_file(
    a_file: Path, claire_home: Path
) -> None:
    result = invoke(*BASE, env={"BACKUP_DIR": str(a_file / "backups")})
    assert result.exit_code == 1
    assert "backup_age: backups cannot go to" in result.stderr, result.stderr


def test_failed_backups_are_warnings_of_the_run(a_file: Path, claire_home: Path) -> None:
    # A replay backs up each BACKUP_INTERVAL of wall time: a second, over a day paced to ~3 s.
    env = {"BACKUP_DIR": str(a_file / "backups"), "BACKUP_INTERVAL": "1s"}
    paced = [*BASE[:-4], "--speed", "30000x", "--capital", "10"]
    result = invoke(*paced, "--ignore-check", "backup_age", "--json", env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    failed = [w for w in body["warnings"] if "backup of run" in w and "failed" in w]
    assert any("interval backup" in w for w in failed), body["warnings"]
    assert "warning: the interval backup of run" in result.stderr
    status = invoke("status", "--json")  # and `claire status` says it, as a degraded run
    shown = json.loads(status.stdout)
    assert status.exit_code != 0 and shown["health"] == "degraded", shown
    assert any("interval backup" in r for r in shown["reasons"]), shown["reasons"]


# Tight limits: the run raises alerts, so it has notifications to send.
ALERTING = {
    "ALERT_EXPOSURE_PCT": "0.05",
    "ALERT_OPEN_POSITIONS": "0",
    "ALERT_FOR_SECONDS": "0",
    "CLAIRE_NOTIFY_RETRIES": "0",
}
NOTIFY_FAILED = "notifications to channel #1 json failed"


@pytest.mark.parametrize("refusal", ["500", "closed port"])
def test_failed_notifications_are_warnings_of_the_run(claire_home: Path, refusal: str) -> None:
    with receiver(status=500) as hook:
        url = hook.url() if refusal == "500" else f"json://127.0.0.1:{closed_port()}/hook"
        result = invoke(*BASE, "--json", env={**ALERTING, "CLAIRE_NOTIFY_URLS": url})
        assert result.exit_code == 0, result.output
        if refusal == "500":
            assert hook.posts, "the run sent no notification"
    body = json.loads(result.stdout)
    assert [w for w in body["warnings"] if w.startswith(NOTIFY_FAILED)], body["warnings"]
    assert f"warning: {NOTIFY_FAILED}" in result.stderr
    status = invoke("status", "--json")
    shown = json.loads(status.stdout)
    assert status.exit_code != 0 and shown["health"] == "degraded", shown
    assert any(r.startswith(NOTIFY_FAILED) for r in shown["reasons"]), shown["reasons"]
    plain = invoke("status")
    assert plain.exit_code != 0 and NOTIFY_FAILED in plain.stdout + plain.stderr


@pytest.mark.services
def test_failed_notifications_of_a_services_run_are_its_warnings(claire_home: Path) -> None:
    with receiver(status=500) as hook:
        env = {**ALERTING, "CLAIRE_NOTIFY_URLS": hook.url()}
        result = invoke(*BASE, "--services", "--json", env=env)
        assert result.exit_code == 0, result.output
        assert hook.posts, "the run sent no notification"
    body = json.loads(result.stdout)
    assert body["status"] == "completed"
    assert [w for w in body["warnings"] if w.startswith(NOTIFY_FAILED)], body["warnings"]
    shown = json.loads(invoke("status", "--json").stdout)
    assert any(r.startswith(NOTIFY_FAILED) for r in shown["reasons"]), shown["reasons"]
