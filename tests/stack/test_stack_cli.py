"""`claire stack` without a Docker engine, and the stack's health rules (no Docker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from claire_cli.main import app
from claire_cli.render import stack_table
from engine.stack.health import problems


def row(
    service: str, state: str = "running", health: str = "healthy", **more: object
) -> dict[str, object]:
    body = {"service": service, "state": state, "health": health, "restarts": 0,
            "uptime_s": 75.0, "ports": "127.0.0.1:8002->8002/tcp", "exit_code": None}  # fmt: skip
    return {**body, **more}


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")


def test_every_stack_command_says_in_one_sentence_that_no_docker_engine_answers(
    no_docker: None,
) -> None:
    for args in (["ps"], ["logs", "cdb_risk"], ["restart", "cdb_risk"], ["down"], ["build"]):
        result = CliRunner().invoke(app, ["stack", *args])
        assert result.exit_code == 1, args
        assert "no Docker engine is reachable" in result.output, args
        assert "Traceback" not in result.output


def test_up_without_secrets_names_the_variable_and_the_example_file(
    no_docker: None, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["stack", "up", "--compose-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "set REDIS_PASSWORD in compose/.env" in result.output
    assert "copy compose/.env.example to compose/.env" in result.output


def test_preflight_with_stack_fails_the_stack_check_when_no_engine_answers(
    no_docker: None, four_symbols: list[Path]
) -> None:
    args = ["preflight", "--stack", "--json", "--replay", str(four_symbols[0])]
    result = CliRunner().invoke(app, args)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["stack"]["status"] == "fail" and checks["stack"]["blocking"]
    assert result.exit_code == 1


def test_the_stack_compose_command_prints_the_checked_in_file() -> None:
    result = CliRunner().invoke(app, ["stack", "compose"])
    compose = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"
    assert result.exit_code == 0 and result.stdout == compose.read_text()


def test_problems_name_each_container_that_is_down_unhealthy_or_failed_once() -> None:
    rows = [
        row("cdb_redis"),
        row("cdb_init", state="exited", health="-", exit_code=0),
        row("cdb_risk", health="unhealthy"),
        row("cdb_execution", state="restarting", health="starting"),
        row("cdb_ws", health="-"),
    ]
    assert problems(rows) == ["cdb_risk is unhealthy", "cdb_execution is restarting"]
    failed = row("cdb_init", state="exited", health="-", exit_code=1)
    assert problems([failed]) == ["cdb_init exited with code 1"]


def test_the_table_shows_state_health_restarts_uptime_and_ports() -> None:
    console = Console(width=120, record=True)
    done = row("cdb_init", state="exited", exit_code=0, uptime_s=None)
    console.print(stack_table([row("cdb_risk", restarts=2, uptime_s=3725.0), done]))
    text = console.export_text()
    assert "cdb_risk" in text and "healthy" in text and "1h02m" in text
    assert "127.0.0.1:8002->8002/tcp" in text and "exited (0)" in text
    console = Console(width=120, record=True)
    console.print(stack_table([]))
    assert "claire stack up" in console.export_text()


def _compose_env(folder: Path, extra: str = "") -> Path:
    (folder / ".env").write_text(
        "POSTGRES_PASSWORD=p\nREDIS_PASSWORD=r\nGRAFANA_ADMIN_PASSWORD=g\nCLAIRE_WEB_TOKEN=t\n"
        + extra
    )
    return folder


def test_up_says_live_or_replay_before_it_asks_docker(no_docker: None, tmp_path: Path) -> None:
    replay = CliRunner().invoke(app, ["stack", "up", "--compose-dir", str(_compose_env(tmp_path))])
    assert replay.exit_code == 1
    assert "the stack runs replay: ETH_BTC-5m.csv, LTC_BTC-5m.csv" in replay.stderr
    assert "no Docker engine is reachable" in replay.stderr
    live = _compose_env(
        tmp_path, "CLAIRE_EXCHANGE=mexc\nCLAIRE_MARKET=futures\nCLAIRE_SYMBOLS=BTCUSDT\n"
    )
    said = CliRunner().invoke(app, ["stack", "up", "--compose-dir", str(live)])
    assert "the stack runs live: mexc futures, symbols BTCUSDT" in said.stderr


def test_up_names_the_live_run_and_its_symbols(no_docker: None, tmp_path: Path) -> None:
    live = _compose_env(
        tmp_path, "CLAIRE_EXCHANGE=mexc\nCLAIRE_SYMBOLS=ETHBTC,LTCBTC\nCLAIRE_RUN_ID=live-1\n"
    )
    said = CliRunner().invoke(app, ["stack", "up", "--compose-dir", str(live)])
    assert said.exit_code == 1  # no Docker engine here
    assert "the stack runs live: mexc spot, symbols ETHBTC, LTCBTC" in said.stderr
    assert "; run live-1" in said.stderr
    wrong = _compose_env(
        tmp_path, "CLAIRE_EXCHANGE=mexc\nCLAIRE_SYMBOLS=ETHBTC\nCLAIRE_LIVE_DAYS=x\n"
    )
    refused = CliRunner().invoke(app, ["stack", "up", "--compose-dir", str(wrong)])
    assert refused.exit_code == 1
    assert "CLAIRE_LIVE_DAYS is 'x'" in refused.stderr
    assert "Docker" not in refused.stderr  # refused before Docker is asked anything


def test_up_refuses_mixed_quotes_before_anything_is_made(no_docker: None, tmp_path: Path) -> None:
    folder = _compose_env(tmp_path, "CLAIRE_EXCHANGE=mexc\nCLAIRE_SYMBOLS=BTCUSDT,ETHBTC\n")
    result = CliRunner().invoke(app, ["stack", "up", "--compose-dir", str(folder)])
    assert result.exit_code == 1
    assert "CLAIRE_SYMBOLS mixes quote currencies" in result.stderr
    assert "Docker" not in result.stderr  # refused before Docker is asked anything


def test_a_build_without_a_registry_says_how_to_build_offline() -> None:
    from engine.stack.containers import _build_failure

    said = _build_failure(
        "Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io: no such host",
        "python:3.11-slim",
    )
    assert "build offline" in said and "--base-image" in said and "compose/wheels" in said
    assert len(said.splitlines()) == 1
    assert _build_failure("COPY failed: no source files", "python:3.11-slim").startswith(
        "building claire-de-binare:latest failed"
    )
