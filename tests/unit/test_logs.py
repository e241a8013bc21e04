"""Run logs: JSON lines in rotating files, read back in order, with secrets masked."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from engine.config import load_settings
from engine.ops.logs import (
    follow_records,
    format_record,
    level_at_least,
    log_files,
    log_folder,
    parse_since,
    read_records,
    run_logging,
)

SECRET = "pw-MARKER-4711"


def _settings(**extra: object) -> object:
    return load_settings(
        claire_postgres_url=SecretStr(f"postgresql://u:{SECRET}@db.example/claire"),
        mexc_api_key=SecretStr("KEY-MARKER-1234"),
        **extra,
    )


def test_records_are_json_lines_with_the_run_and_their_fields(tmp_path: Path) -> None:
    log = logging.getLogger("claire.test")
    with run_logging(_settings(), tmp_path, "run-1"):
        log.info("hello", extra={"event": "greeting", "count": 3})
        log.warning("careful")
    [first, second] = list(read_records(log_folder(tmp_path)))
    assert first["message"] == "hello" and first["level"] == "info"
    assert first["event"] == "greeting" and first["count"] == 3 and first["run_id"] == "run-1"
    assert second["level"] == "warning" and second["logger"] == "claire.test"
    assert datetime.fromisoformat(first["ts"].replace("Z", "+00:00")).tzinfo is not None


def test_secrets_are_masked_in_messages_fields_and_tracebacks(tmp_path: Path) -> None:
    log = logging.getLogger("claire.test")
    with run_logging(_settings(), tmp_path, "run-1", extra_secrets=["tok-MARKER-99"]):
        log.warning("connecting to postgresql://u:%s@db.example/claire", SECRET)
        log.info("key", extra={"event": "x", "detail": "KEY-MARKER-1234 and tok-MARKER-99"})
        try:
            raise RuntimeError(f"refused with password {SECRET}")
        except RuntimeError:
            log.exception("failed")
    text = (log_folder(tmp_path) / "claire.log").read_text()
    assert "MARKER" not in text
    assert text.count("**********") >= 4
    assert "RuntimeError" in text  # the traceback is kept, masked


def test_files_rotate_at_their_size_and_read_back_in_order(tmp_path: Path) -> None:
    settings = _settings(claire_log_max_bytes=10_000, claire_log_backups=3)
    log = logging.getLogger("claire.test")
    with run_logging(settings, tmp_path, "run-1"):
        for i in range(400):
            log.info("line %d %s", i, "x" * 40)
    files = log_files(log_folder(tmp_path))
    assert len(files) == 4  # the current file and three rotated ones
    assert all(f.stat().st_size <= 10_000 for f in files)
    numbers = [int(r["message"].split()[1]) for r in read_records(log_folder(tmp_path))]
    assert numbers == sorted(numbers) and numbers[-1] == 399 and numbers[0] > 0


def test_reading_filters_by_time_run_and_level(tmp_path: Path) -> None:
    folder = log_folder(tmp_path)
    folder.mkdir()
    lines = [
        {"ts": "2026-01-01T10:00:00.000Z", "level": "info", "message": "a", "run_id": "r1"},
        "not json at all",
        {"ts": "2026-01-01T11:00:00.000Z", "level": "error", "message": "b", "run_id": "r2"},
        {"ts": "2026-01-01T12:00:00.000Z", "level": "warning", "message": "c", "run_id": "r1"},
    ]
    (folder / "claire.log").write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    since = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    assert [r["message"] for r in read_records(folder, since)] == ["b", "c"]
    assert [r["message"] for r in read_records(folder, run_id="r1")] == ["a", "c"]
    warning = level_at_least("warning")
    assert [r["message"] for r in read_records(folder) if warning(r)] == ["b", "c"]
    assert "ERROR" in format_record(next(read_records(folder, since)))


def test_follow_prints_what_is_there_then_new_lines(tmp_path: Path) -> None:
    folder = log_folder(tmp_path)
    folder.mkdir()
    path = folder / "claire.log"
    path.write_text(json.dumps({"ts": "2026-01-01T10:00:00Z", "message": "old"}) + "\n")
    seen: list[str] = []

    def stop() -> bool:
        if len(seen) == 1:
            with path.open("a") as f:
                f.write(json.dumps({"ts": "2026-01-01T10:00:01Z", "message": "new"}) + "\n")
        return len(seen) >= 2

    for record in follow_records(folder, poll_s=0.01, stop=stop):
        seen.append(record["message"])
        if len(seen) >= 2:
            break
    assert seen == ["old", "new"]


def test_since_takes_durations_and_times() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-01-01T12:00:00Z", now) == datetime(2026, 1, 1, 12, tzinfo=UTC)
