"""Backups against the embedded PostgreSQL: create, verify, restore, prune, and a resume from
a backup taken in the middle of a run."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_settings
from engine.home.database import open_store
from engine.home.lock import RunLock
from engine.ops.backups import BackupFolder, Backups
from tests.cli.support import ETH, invoke, ok, ok_json, one_line, replay
from tests.paperrun.runs import stored_fills, unbroken_fills

pytestmark = pytest.mark.integration


def figures(home: Path) -> tuple[Any, Any]:
    """The run's figures; the session's wall-clock uptime is not one of them (the stop's
    last seconds come after its backup)."""
    status = ok_json("papertest", "status", "--data-dir", home)
    report = json.loads(ok("report", "--final", "--json", "--data-dir", home).stdout)
    return status, _without_uptime(report)


def _without_uptime(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_uptime(v) for k, v in value.items() if k != "uptime_s"}
    if isinstance(value, list):
        return [_without_uptime(v) for v in value]
    return value


def wait_for_events(home: Path, events: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        found = ok_json("status", "--data-dir", home)
        if found["rows"].get("candles", 0) >= events:
            return
        assert found["status"] == "running", found
        assert time.monotonic() < deadline, "the run never got that far"
        time.sleep(0.2)


def test_backup_round_trip_during_a_run_and_resume_from_it(
    four_symbols: list[Path], claire_home: Path, new_home: Callable[[], Path]
) -> None:
    args = ["papertest", "start", "--days", "7", "--capital", "10", "--speed", "50000x"]
    for path in four_symbols:
        args += ["--replay", str(path)]
    started = ok_json(*args, "--detach")
    wait_for_events(claire_home, 2000)

    during = ok_json("backup", "create")
    assert during["reason"] == "manual" and during["run_id"] == started["run_id"]
    assert during["runs"][0]["status"] == "running" and during["rows"] > 0
    stopped = ok_json("papertest", "stop")
    assert stopped["status"] == "done" and stopped["result"]["open_positions"] == []

    checked = ok_json("backup", "verify", during["name"])
    assert [c["ok"] for c in checked] == [True]
    assert checked[0]["checks"]["rows"] == during["rows"]
    assert checked[0]["checks"]["tables"] == len(during["tables"])
    listed = {b["name"]: b for b in ok_json("backup", "list")}
    assert listed[during["name"]]["verification"]["ok"] is True
    final = Path(stopped["result"]["backup"])
    assert final.name in {Path(b["file"]).name for b in listed.values()}

    # The backup the planned stop took, in a new data folder: the same figures there.
    copy = new_home()
    restored = ok_json("backup", "restore", str(final), "--data-dir", copy)
    assert restored["previous"] is None and [r["status"] for r in restored["runs"]] == ["stopped"]
    assert figures(copy) == figures(claire_home)

    # The backup taken mid-run: its run is interrupted there, and resumes to the end with
    # the fills of a run that never stopped.
    middle = new_home()
    ok("backup", "restore", str(claire_home / "backups" / f"{during['name']}.dump"),
       "--data-dir", middle)  # fmt: skip
    [there] = ok_json("papertest", "status", "--data-dir", middle)
    assert there["status"] == "interrupted"
    resumed = ok_json("papertest", "start", "--resume", "--speed", "max", "--data-dir", middle)
    assert resumed["status"] == "completed" and resumed["resumed_after_events"] > 0
    assert stored_fills(middle, resumed["run_id"]) == unbroken_fills(four_symbols, 7)


@pytest.fixture
def with_backups(claire_home: Path) -> list[dict[str, Any]]:
    """A finished one-day run, with the backups taken while it ran (one each BACKUP_INTERVAL
    of wall time: a second, over a day paced to a few seconds) and one taken after it."""
    paced = [*replay(ETH, days="1"), "--speed", "30000x", "--json"]
    ok(*paced, env={"BACKUP_INTERVAL": "1s"})
    ok("backup", "create", "--json")
    made = ok_json("backup", "list")
    assert len(made) >= 2 and made[0]["reason"] == "interval" and made[-1]["reason"] == "manual"
    return made


def test_a_damaged_backup_fails_verify_and_is_never_restored(
    with_backups: list[dict[str, Any]], claire_home: Path
) -> None:
    newest = with_backups[-1]
    dump = Path(newest["file"])
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = invoke("backup", "verify", newest["name"])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert f"failed {newest['name']}: the dump's sha256 is" in line
    assert "damaged or changed after it was written" in line
    [entry] = [b for b in ok_json("backup", "list") if b["name"] == newest["name"]]
    assert entry["verification"]["ok"] is False
    refused = invoke("backup", "restore", newest["name"])
    assert refused.exit_code == 1 and "is damaged" in one_line(refused.stderr)


def test_a_dump_cut_short_behind_a_matching_checksum_fails_the_restore_check(
    with_backups: list[dict[str, Any]], claire_home: Path
) -> None:
    from engine.ops.backups.service import sha256_of
    from engine.runtime.files import write_json

    newest = with_backups[-1]
    dump = Path(newest["file"])
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    manifest_path = dump.with_suffix(".json")
    body = json.loads(manifest_path.read_text())
    body.update(size=dump.stat().st_size, sha256=sha256_of(dump))
    write_json(manifest_path, body)
    [checked] = json.loads(invoke("backup", "verify", newest["name"], "--json").stdout)
    assert checked["ok"] is False and checked["checks"]["checksum"] is True
    assert "pg_restore" in checked["reason"] or "scratch database" in checked["reason"]


def test_restore_in_place_waits_for_the_run_and_new_databases_stay_new(
    with_backups: list[dict[str, Any]], claire_home: Path
) -> None:
    name = with_backups[0]["name"]
    lock = RunLock(claire_home, "run-busy")
    assert lock.acquire()
    try:
        result = invoke("backup", "restore", name)
        assert result.exit_code == 1
        assert "run run-busy is active" in one_line(result.stderr)
        copy = ok_json("backup", "restore", name, "--to-database", "claire_copy")
        assert copy["database"] == "claire_copy" and copy["previous"] is None
        again = invoke("backup", "restore", name, "--to-database", "claire_copy")
        assert again.exit_code == 1 and "exists already" in one_line(again.stderr)
        forced = ok_json("backup", "restore", name, "--force")
    finally:
        lock.release()
    # In place, the database it replaced holds a run, so it is kept under another name.
    assert forced["database"] == "claire"
    assert forced["previous"].startswith("claire_before_restore_")
    assert [r["status"] for r in forced["runs"]] == ["running"]  # as while the run ran


class Ago:
    def __init__(self, **delta: float) -> None:
        self.delta = timedelta(**delta)

    def now(self) -> datetime:
        return datetime.now(UTC) - self.delta


def test_prune_keeps_exactly_what_it_promises(claire_home: Path) -> None:
    ok(*replay(ETH, days="0.5"), "--json")
    folder = BackupFolder(claire_home / "backups")
    for made in folder.backups():  # the run's own: leave them out of this
        made.dump.unlink()
        made.manifest_path.unlink()
    with open_store(load_settings(), claire_home) as (store, _):
        made = {
            age: Backups(folder, Ago(days=age)).create(store.db, "manual")
            for age in (30, 20, 16, 15, 13, 1)
        }
        assert Backups(folder).verify(made[20], store.db).ok
        assert Backups(folder).verify(made[30], store.db).ok
    (folder.path / "claire-leftover.dump.partial").write_bytes(b"cut short")
    plan = ok_json("backup", "prune", "--dry-run")
    assert len(folder.backups()) == 6  # a dry run deletes nothing
    result = ok_json("backup", "prune")
    assert plan["deleted"] == result["deleted"]
    kept = {d["name"]: d["why"] for d in result["kept"]}
    assert kept == {
        made[20].name: "the newest verified backup",
        made[13].name: "younger than 14 days",
        made[1].name: "younger than 14 days",
    }
    assert {d["name"] for d in result["deleted"]} == {made[a].name for a in (30, 16, 15)}
    assert sorted(b.name for b in folder.backups()) == sorted(kept)
    assert not os.path.exists(folder.path / "claire-leftover.dump.partial")
    for age in (30, 16, 15):
        assert not made[age].dump.exists()


def test_backup_commands_need_claire_data(tmp_path: Path) -> None:
    result = invoke("backup", "create", "--data-dir", tmp_path / "nothing")
    assert result.exit_code == 1 and "no Claire data in" in one_line(result.stderr)
