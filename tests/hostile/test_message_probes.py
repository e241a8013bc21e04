"""Failures outside the engine's control reach the operator as one sentence with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_settings
from engine.incidents.redact import bundle_redactor
from engine.runtime.server_log import start_failure_cause
from tests.cli.support import ETH, invoke, ok, one_line, replay

BASE = ["papertest", "start", "--replay", ETH, "--days", "1", "--speed", "max", "--capital", "10"]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def a_run(claire_home: Path) -> Path:
    ok(*replay(ETH, days="0.5"))
    return claire_home


@pytest.mark.parametrize("command", [["export", "trades"], ["report"], ["report", "--final"]])
def test_an_out_file_that_cannot_be_written_is_one_sentence(
    command: list[str], a_run: Path
) -> None:
    result = invoke(*command, "--out", "/dev/full")
    assert result.exit_code == 1, result.output
    assert one_line(result.output) == (
        "error: cannot write /dev/full (No space left on device); choose another --out file."
    )


def test_an_out_file_in_a_folder_that_is_a_file_is_one_sentence(
    a_run: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("export", "trades", "--out", blocker / "trades.csv")
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert (
        line.startswith(f"error: cannot write {blocker / 'trades.csv'} (") and "OSError" not in line
    )


STATE_STRATEGY = """
from datetime import datetime, timezone
from decimal import Decimal
from engine.signal.momentum import MomentumStrategy


class Kept(MomentumStrategy):
    def export_state(self):
        return {"bars": 3, "book": {"last": VALUE}}
"""


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ('Decimal("1.5")', "Decimal"),
        ("datetime.now(timezone.utc)", "datetime"),
        ("{1, 2}", "set"),
        ('float("nan")', "float"),
    ],
)
def test_a_strategy_state_json_cannot_hold_names_the_strategy_and_field(
    value: str, kind: str, tmp_path: Path, claire_home: Path
) -> None:
    path = tmp_path / "kept.py"
    path.write_text(STATE_STRATEGY.replace("VALUE", value))
    result = invoke(*BASE, "--strategy", f"{path}:Kept")
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert line.startswith(
        f"error: strategy Kept: export_state() field book.last is a {kind}, which JSON cannot hold;"
    ), line


@pytest.mark.parametrize(
    ("log", "says"),
    [
        (
            "2026-01-01 LOG:  starting PostgreSQL 17\n"
            '2026-01-01 FATAL:  could not write lock file "postmaster.pid": No space left on '
            "device\n2026-01-01 LOG:  database system is shut down\n",
            "the disk is full (No space left on device)",
        ),
        (
            'FATAL:  could not open file "global/pg_filenode.map": Permission denied\n',
            "permission denied on a file of the server",
        ),
        (
            'LOG:  could not bind IPv4 address "127.0.0.1": Address already in use\n'
            'WARNING:  could not create listen socket for "127.0.0.1"\n'
            "FATAL:  could not create any TCP/IP sockets\n",
            "its address is in use (Address already in use)",
        ),
        (
            'FATAL:  lock file "postmaster.pid" already exists\n'
            "HINT:  Is another postmaster (PID 4242) running in data directory?\n",
            "another server holds its lock file (postmaster.pid)",
        ),
    ],
)
def test_a_failed_server_start_names_its_cause(log: str, says: str, tmp_path: Path) -> None:
    cause = start_failure_cause(log, tmp_path)
    assert cause is not None and cause.startswith(says), cause
    assert start_failure_cause("LOG:  database system is shut down\n", tmp_path) is None


def test_incident_bundles_mask_secrets_not_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CLAIRE_NOTIFY_URLS",
        "json://alerts:Pa55wordXYZ@10.20.30.40:8123/hook/TokenPathABC123,"
        "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321,"
        "discord://1234567890123456789/WebhookTokenQRS",
    )
    redactor = bundle_redactor(load_settings())
    text = (
        "feed connected to 10.20.30.40:8123 and hooks.example.com; "
        "password Pa55wordXYZ, path TokenPathABC123, bot AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw, "
        "webhook 1234567890123456789 WebhookTokenQRS"
    )
    scrubbed = redactor.scrub(text, "log.txt")
    assert "10.20.30.40:8123" in scrubbed and "hooks.example.com" in scrubbed
    for secret in ("Pa55wordXYZ", "TokenPathABC123", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
                   "1234567890123456789", "WebhookTokenQRS"):  # fmt: skip
        assert secret not in scrubbed


def test_psql_substitutes_the_run_in_c_commands(
    a_run: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_id = invoke("papertest", "status", "--json").stdout.split('"run_id": "')[1].split('"')[0]
    result = invoke(
        "db", "psql", "--run", run_id, "--",
        "-A", "-t", "-c", "SELECT count(*) > 0 FROM runs WHERE run_id = :'run'",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert capfd.readouterr().out.strip().endswith("t")
