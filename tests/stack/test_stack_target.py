"""The runbook's commands on a stack, with no URL typed: `--stack` finds the stack's
PostgreSQL where compose/.env publishes it. An embedded PostgreSQL stands in for the
stack's, on TCP with the stack's user, password and port (no Docker needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.runtime.files import free_port
from engine.store import RunStatus
from tests.cli.support import ETH, invoke, ok
from tests.stack.conftest import STACK_PASSWORD as PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_env(
    stack_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claire_home: Path
) -> str:
    """A compose/.env naming the stand-in; returns the stack's URL (with its password)."""
    compose = tmp_path / "compose"
    compose.mkdir()
    (compose / ".env").write_text(
        f"POSTGRES_PASSWORD={PASSWORD}\nPOSTGRES_PORT={stack_port}\n"
        f"REDIS_PASSWORD=redis-{PASSWORD}\nREDIS_PORT={free_port()}\n"
    )
    monkeypatch.setenv("CLAIRE_COMPOSE_DIR", str(compose))
    return f"postgresql://claire:{PASSWORD}@127.0.0.1:{stack_port}/claire"


def test_runbook_commands_use_the_stacks_database_with_no_url_typed(
    stack_env: str, stack_port: int, claire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run in the stack's database, as its services record one.
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", stack_env)
    started = ok("papertest", "start", "--replay", ETH, "--days", "1", "--capital", "10", "--json")
    run = json.loads(started.stdout)
    monkeypatch.delenv("CLAIRE_POSTGRES_URL")
    said = f"database: the stack claire's PostgreSQL at postgresql://claire:***@127.0.0.1:{stack_port}/claire"

    status = invoke("status", "--stack", "--json")
    assert status.exit_code in (0, 1), status.output
    assert json.loads(status.stdout)["run_id"] == run["run_id"]
    assert said in status.stderr
    # The data folder has no run: without --stack (and no Docker) the folder answers.
    assert invoke("status", "--no-stack", "--json").exit_code == 2

    made = json.loads(ok("backup", "create", "--stack", "--json").stdout)
    assert Path(made["file"]).is_relative_to(claire_home / "backups")
    assert made["run_id"] == run["run_id"] and made["rows"] > 0
    listed = json.loads(ok("backup", "list", "--stack", "--json").stdout)
    assert [b["name"] for b in listed] == [made["name"]]

    report = ok("report", "--stack", "--day", "1", "--format", "json")
    assert json.loads(report.stdout)["run_id"] == run["run_id"]
    assert said in report.stderr
    trades = ok("export", "trades", "--stack")
    assert trades.stdout.splitlines()[0].startswith("trade_id,order_id,ts,symbol")
    assert json.loads(ok("incident", "list", "--stack", "--json").stdout) == []

    # Commands sent through run_commands reach the stack's run: it has ended, so both
    # are refused by name (from the stack's database; the data folder has no run).
    for args in (("risk", "halt", "--note", "check"), ("papertest", "stop")):
        sent = invoke(*args, "--stack", "--run", run["run_id"], "--timeout", "5")
        assert sent.exit_code == 1, (args, sent.output)
        assert run["run_id"] in sent.stderr and said in sent.stderr, (args, sent.stderr)

    outputs = status.output + report.output + trades.output + json.dumps(made)
    assert PASSWORD not in outputs


def test_stack_asked_for_and_not_there_is_one_sentence_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claire_home: Path
) -> None:
    compose = tmp_path / "compose"
    compose.mkdir()
    (compose / ".env").write_text(
        f"POSTGRES_PASSWORD={PASSWORD}\nPOSTGRES_PORT={free_port()}\nREDIS_PASSWORD=r\n"
    )
    monkeypatch.setenv("CLAIRE_COMPOSE_DIR", str(compose))
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")  # no Docker answers
    for args in (("status",), ("backup", "create"), ("incident", "list"), ("report",)):
        result = invoke(*args, "--stack")
        assert result.exit_code == 1, (args, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "`claire stack up`" in lines[0], (args, result.stderr)


def test_an_operator_command_to_a_stacks_running_run_says_what_to_do_and_sends_nothing(
    stack_env: str, claire_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.config import load_settings
    from engine.run.runner import PaperRunner
    from engine.store import Store

    # A run the stack's cdb_init recorded: running, with no process on this machine.
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", stack_env)
    assert PaperRunner(load_settings(), claire_home).record_services_run([ETH], 1, "max", "stack")
    monkeypatch.delenv("CLAIRE_POSTGRES_URL")
    for args in (("risk", "halt", "--note", "check"), ("papertest", "stop"), ("risk", "halt",
                 "--note", "check", "--run", "stack")):  # fmt: skip
        sent = invoke(*args, "--stack", "--timeout", "5")
        assert sent.exit_code == 1, (args, sent.output)
        lines = [line for line in sent.stderr.splitlines() if line.strip()]
        said = [line for line in lines if not line.startswith("database:")]
        assert len(said) == 1, sent.stderr
        assert "run stack is recorded as running, but nothing takes its commands" in said[0]
        assert "no stack steward has answered for it in the last 30 s" in said[0]
        assert "cdb_steward" in said[0] and "claire stack up" in said[0]
    with Store.open(stack_env, external=True) as store:
        sent_rows = store.db.fetch_all("SELECT command_id FROM run_commands", {})
        # A second run recorded as running there: which one is meant is asked for.
        monkeypatch.setenv("CLAIRE_POSTGRES_URL", stack_env)
        runner = PaperRunner(load_settings(), claire_home)
        assert runner.record_services_run([ETH], 1, "max", "stack-two")
        monkeypatch.delenv("CLAIRE_POSTGRES_URL")
        try:
            both = invoke("risk", "halt", "--note", "check", "--stack", "--timeout", "5")
            said = [line for line in both.stderr.splitlines() if line.strip()]
            assert both.exit_code == 1 and "several are recorded as running" in said[-1], said
            assert "stack, stack-two" in said[-1] or "stack-two, stack" in said[-1]
            assert "--run" in said[-1]
        finally:  # the database is this worker's for its other tests: leave nothing running
            for run_id in ("stack", "stack-two"):
                store.end_run(run_id, RunStatus.STOPPED, datetime.now(UTC))
    assert sent_rows == []  # nothing was sent
