"""Preflight checks one by one, and the go/no-go they add up to (no database needed here)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.home.lock import RunLock
from engine.ops.backups.manifest import BackupFolder, BackupManifest
from engine.ops.preflight import (
    CheckResult,
    CheckStatus,
    PreflightContext,
    ReplaySource,
    check_active_runs,
    check_backup_age,
    check_data_source,
    check_disk,
    check_ignored,
    check_memory,
    check_redis,
    check_settings,
    run_preflight,
)
from engine.runtime.files import write_json
from tests.ops.resp_server import RespServer


def ctx(home: Path, **settings: str) -> PreflightContext:
    return PreflightContext(load_settings(**settings), home)


def test_paired_secrets_must_come_together(claire_home: Path) -> None:
    alone = check_settings(ctx(claire_home, mexc_api_key="k-123"))
    assert alone.status is CheckStatus.FAIL
    assert "MEXC_API_KEY set without MEXC_API_SECRET" in alone.value
    assert "set MEXC_API_SECRET too" in alone.fix and "k-123" not in alone.value + alone.fix
    both = check_settings(ctx(claire_home, mexc_api_key="k-123", mexc_api_secret="s-456"))
    assert both.status is CheckStatus.OK and "MEXC_API_KEY, MEXC_API_SECRET" in both.value
    assert "s-456" not in both.value


def test_invalid_settings_fail_the_first_check_and_skip_those_that_need_them(
    claire_home: Path,
) -> None:
    broken = PreflightContext(None, claire_home, settings_error="MAX_POSITION_PCT=2 is invalid")
    report = run_preflight(broken)
    by_name = {c.name: c for c in report.checks}
    assert by_name["settings"].status is CheckStatus.FAIL
    assert by_name["settings"].value == "MAX_POSITION_PCT=2 is invalid"
    assert by_name["postgres"].status is CheckStatus.SKIPPED
    assert by_name["disk"].status is CheckStatus.OK  # measured with the default limit
    assert not report.go


def test_disk_below_the_limit_is_no_go(claire_home: Path) -> None:
    result = check_disk(ctx(claire_home, preflight_min_disk_gb="900000"))
    assert result.status is CheckStatus.FAIL and "below 900000 GB" in result.value
    assert "PREFLIGHT_MIN_DISK_GB" in result.fix
    assert check_disk(ctx(claire_home)).status is CheckStatus.OK


def test_short_memory_is_a_warning(claire_home: Path) -> None:
    result = check_memory(ctx(claire_home, preflight_min_memory_gb="900000"))
    assert result.status is CheckStatus.WARN and "PREFLIGHT_MIN_MEMORY_GB" in result.fix


def test_replay_files_must_parse_and_share_a_quote(
    claire_home: Path, four_symbols: list[Path], tmp_path: Path
) -> None:
    good = ctx(claire_home)
    good.source = ReplaySource(tuple(four_symbols), 7)
    ok = check_data_source(good)
    assert ok.status is CheckStatus.OK and "4 files quoted in BTC" in ok.value
    assert "2018-01-10 04:55 -> 2018-01-17 04:55 UTC" in ok.value

    garbage = tmp_path / "ETH_BTC-5m.csv"
    garbage.write_bytes(os.urandom(2048))
    bad = ctx(claire_home)
    bad.source = ReplaySource((garbage,), 7)
    failed = check_data_source(bad)
    assert failed.status is CheckStatus.FAIL and "ETH_BTC-5m.csv" in failed.value
    assert "format" in failed.fix

    trades = four_symbols[0].parent / "XRP_ETH-2019-10-11-trades.csv"
    mixed = ctx(claire_home)
    mixed.source = ReplaySource((four_symbols[0], trades), 1)
    assert "quoted in BTC, ETH" in check_data_source(mixed).value


def test_no_data_source_is_skipped_with_the_way_to_name_one(claire_home: Path) -> None:
    result = check_data_source(ctx(claire_home))
    assert result.status is CheckStatus.SKIPPED and "--replay FILE" in result.fix


def _write_manifest(folder: BackupFolder, name: str, created: datetime) -> None:
    folder.ensure()
    manifest = BackupManifest(
        name=name, created_at=created, reason="manual", run_id=None, market_time=None,
        database="postgresql://postgres:***@/claire", database_name="claire",
        server_version="18.6", schema_version=8, size=0, sha256="0" * 64, tables={},
    )  # fmt: skip
    write_json(folder.manifest_path(name), manifest.as_json())


def test_backup_age_warns_when_the_newest_is_older_than_the_limit(claire_home: Path) -> None:
    folder = BackupFolder(claire_home / "backups")
    now = datetime.now(UTC)
    _write_manifest(folder, "claire-old", now - timedelta(hours=30))
    stale = check_backup_age(ctx(claire_home))
    assert stale.status is CheckStatus.WARN and "older than 24 h" in stale.value
    assert "claire backup create" in stale.fix and "30.0 h" in stale.value
    _write_manifest(folder, "claire-new", now - timedelta(hours=2))
    fresh = check_backup_age(ctx(claire_home))
    assert fresh.status is CheckStatus.OK and "claire-new" in fresh.value
    assert "none verified" in fresh.value


def test_no_backup_is_fine_for_an_empty_folder_and_a_warning_once_live_runs_exist(
    claire_home: Path,
) -> None:
    empty = ctx(claire_home)
    assert check_backup_age(empty).status is CheckStatus.OK
    replayed = ctx(claire_home)  # replays take no backups: their data can be replayed
    replayed.facts.update(runs=3, live_runs=0)
    assert check_backup_age(replayed).status is CheckStatus.OK
    used = ctx(claire_home)
    used.facts.update(runs=3, live_runs=2)
    found = check_backup_age(used)
    assert found.status is CheckStatus.WARN and "of the 2 live runs" in found.value


def test_another_active_run_is_no_go_but_the_resumed_one_is_not_another(
    claire_home: Path,
) -> None:
    lock = RunLock(claire_home, "run-elsewhere")
    assert lock.acquire()
    try:
        found = check_active_runs(ctx(claire_home))
        assert found.status is CheckStatus.FAIL and "run-elsewhere" in found.value
        assert "claire papertest stop --run run-elsewhere" in found.fix
        own = ctx(claire_home)
        own.own_run = "run-elsewhere"
        assert check_active_runs(own).status is CheckStatus.OK
    finally:
        lock.release()
    assert check_active_runs(ctx(claire_home)).status is CheckStatus.OK


def test_redis_is_skipped_unless_configured_then_pinged(claire_home: Path) -> None:
    assert check_redis(ctx(claire_home)).status is CheckStatus.SKIPPED
    with RespServer(password="pw") as server:
        url = f"redis://:pw@127.0.0.1:{server.port}"
        assert check_redis(ctx(claire_home, claire_redis_url=url)).status is CheckStatus.OK
        wrong = check_redis(ctx(claire_home, claire_redis_url=url.replace(":pw@", ":no@")))
    assert wrong.status is CheckStatus.FAIL and "CLAIRE_REDIS_URL" in wrong.fix


def _fixed(status: CheckStatus) -> tuple[str, object]:
    def check(_: PreflightContext) -> CheckResult:
        return CheckResult("disk", "free disk", status, "measured")

    return ("disk", check)


def _broken(_: PreflightContext) -> CheckResult:
    raise RuntimeError("the check itself broke\nsecond line")


def test_a_crashing_check_is_shown_and_the_others_still_run(claire_home: Path) -> None:
    checks = [("memory", _broken), _fixed(CheckStatus.OK)]
    report = run_preflight(ctx(claire_home), checks=checks)  # type: ignore[arg-type]
    crashed, ok = report.checks
    assert crashed.status is CheckStatus.CRASHED
    assert crashed.value == "RuntimeError: the check itself broke" and crashed.blocking
    assert ok.status is CheckStatus.OK and not report.go


def test_warnings_are_go_unless_strict_and_ignored_failures_do_not_block(
    claire_home: Path,
) -> None:
    warned = [_fixed(CheckStatus.WARN)]
    assert run_preflight(ctx(claire_home), checks=warned).go  # type: ignore[arg-type]
    strict = run_preflight(ctx(claire_home), strict=True, checks=warned)  # type: ignore[arg-type]
    assert not strict.go and [c.name for c in strict.failing] == ["disk"]
    failed = [_fixed(CheckStatus.FAIL)]
    assert not run_preflight(ctx(claire_home), checks=failed).go  # type: ignore[arg-type]
    ignored = run_preflight(ctx(claire_home), ["disk"], checks=failed)  # type: ignore[arg-type]
    assert ignored.go and ignored.checks[0].ignored and ignored.as_json()["go"] is True


def test_unknown_check_names_are_refused_with_the_list() -> None:
    with pytest.raises(Exception, match="no preflight check named nope; the checks are settings"):
        check_ignored(["nope"])
