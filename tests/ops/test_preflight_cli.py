"""`claire preflight` through the command line, and `papertest start` behind it."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.ops.backups import BackupFolder, Backups
from tests.cli.support import ETH, invoke, ok, ok_json, one_line, replay

pytestmark = pytest.mark.integration


def replay_options(files: list[Path]) -> list[str]:
    out = ["--days", "7"]
    for path in files:
        out += ["--replay", str(path)]
    return out


def checks(result: object) -> dict[str, dict[str, object]]:
    body = json.loads(result.stdout)  # type: ignore[attr-defined]
    return {c["name"]: c for c in body["checks"]}


def test_a_fresh_machine_is_go_for_the_shipped_replay(
    four_symbols: list[Path], claire_home: Path
) -> None:
    result = invoke("preflight", "--json", *replay_options(four_symbols))
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["go"] is True and body["data_dir"] == str(claire_home)
    by_name = {c["name"]: c for c in body["checks"]}
    assert list(by_name) == [
        "settings", "servers", "postgres", "redis", "disk", "memory", "data_source",
        "backup_age", "active_runs",
    ]  # fmt: skip
    assert {c["status"] for c in by_name.values()} <= {"ok", "skipped", "warn"}
    assert by_name["redis"]["value"] == "not used (CLAIRE_REDIS_URL is not set)"
    assert "4 files quoted in BTC" in by_name["data_source"]["value"]
    assert "PostgreSQL 18" in by_name["postgres"]["value"]


def test_the_table_names_each_check_and_the_verdict(
    four_symbols: list[Path], claire_home: Path
) -> None:
    text = ok("preflight", *replay_options(four_symbols)).stdout
    assert "data_source" in text and "active_runs" in text and text.rstrip().endswith("GO")


@pytest.mark.parametrize(
    ("env", "check", "value", "fix"),
    [
        ({"MAX_POSITION_PCT": "2"}, "settings", "MAX_POSITION_PCT=2 is invalid", "correct the"),
        (
            {"PREFLIGHT_MIN_DISK_GB": "900000"},
            "disk",
            "below 900000 GB",
            "point CLAIRE_HOME (--data-dir) at a larger disk",
        ),
    ],
    ids=["bad setting", "tiny disk limit"],
)
def test_each_failing_check_says_why_and_how_to_fix_it(
    four_symbols: list[Path], env: dict[str, str], check: str, value: str, fix: str
) -> None:
    result = invoke("preflight", "--json", *replay_options(four_symbols), env=env)
    assert result.exit_code == 1
    found = checks(result)[check]
    assert found["status"] == "fail" and found["blocking"] is True
    assert value in str(found["value"]) and fix in str(found["fix"])


def test_an_unreachable_database_url_fails_without_showing_its_password(
    four_symbols: list[Path],
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://claire:pa55-word@127.0.0.1:{port}/claire"
    result = invoke(
        "preflight", "--json", *replay_options(four_symbols), env={"CLAIRE_POSTGRES_URL": url}
    )
    assert result.exit_code == 1 and "pa55-word" not in result.output
    found = checks(result)
    assert found["postgres"]["status"] == "fail"
    assert f"postgresql://claire:***@127.0.0.1:{port}/claire" in str(found["postgres"]["value"])
    assert "CLAIRE_POSTGRES_URL is right" in str(found["postgres"]["fix"])
    assert found["servers"]["status"] == "skipped"


def test_an_unreadable_replay_file_fails(tmp_path: Path) -> None:
    broken = tmp_path / "ETH_BTC-5m.csv"
    broken.write_bytes(os.urandom(4096))
    result = invoke("preflight", "--json", "--replay", broken)
    assert result.exit_code == 1
    found = checks(result)["data_source"]
    assert found["status"] == "fail" and "ETH_BTC-5m.csv" in str(found["value"])
    assert "format" in str(found["fix"])


def test_a_stale_backup_warns_and_is_no_go_only_when_strict(
    four_symbols: list[Path], claire_home: Path
) -> None:
    ok(*replay(ETH, days="0.5"), "--json")
    folder = BackupFolder(claire_home / "backups")
    for made in folder.backups():
        made.dump.unlink()
        made.manifest_path.unlink()

    class DayAndAHalfAgo:
        def now(self) -> datetime:
            return datetime.now(UTC) - timedelta(hours=36)

    with open_store(load_settings(), claire_home) as (store, _):
        Backups(folder, DayAndAHalfAgo()).create(store.db)
    result = invoke("preflight", "--json", *replay_options(four_symbols))
    assert result.exit_code == 0
    found = checks(result)["backup_age"]
    assert found["status"] == "warn" and "older than 24 h" in str(found["value"])
    assert "claire backup create" in str(found["fix"])
    strict = invoke("preflight", "--json", "--strict", *replay_options(four_symbols))
    assert strict.exit_code == 1 and json.loads(strict.stdout)["go"] is False


def test_start_refuses_a_no_go_in_one_line_unless_told_otherwise(
    four_symbols: list[Path],
) -> None:
    env = {"PREFLIGHT_MIN_DISK_GB": "900000"}
    result = invoke(*replay(ETH, days="0.5"), env=env)
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert line.startswith("error: preflight says no-go: disk:") and "--skip-preflight" in line
    ignored = ok(*replay(ETH, days="0.5"), "--json", "--ignore-check", "disk", env=env)
    assert json.loads(ignored.stdout)["status"] == "completed"
    assert "warning: preflight disk:" in ignored.stderr  # ignored, still said
    skipped = ok(*replay(ETH, days="0.5"), "--json", "--skip-preflight", env=env)
    assert json.loads(skipped.stdout)["status"] == "completed"


def test_the_run_keeps_the_preflight_it_started_on(claire_home: Path) -> None:
    run = ok_json(*replay(ETH, days="0.5"))
    with open_store(load_settings(), claire_home) as (store, _):
        record = store.get_run(run["run_id"])
    assert record is not None
    kept = record.config["preflight"]
    assert kept["go"] is True
    assert {c["name"] for c in kept["checks"]} >= {"postgres", "data_source", "active_runs"}
