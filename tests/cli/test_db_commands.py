"""`claire db url` and `claire db psql`: the data folder's database with the bundled psql."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime import EmbeddedPostgres, postgres_program
from tests.cli.support import ETH, invoke, ok, ok_json, one_line, replay

pytestmark = pytest.mark.integration


def psql(url: str, sql: str) -> str:
    done = subprocess.run(
        [str(postgres_program("psql")), url, "--no-psqlrc", "-tAc", sql],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_db_url_works_with_the_bundled_psql_while_the_server_runs(claire_home: Path) -> None:
    run = ok_json(*replay(ETH, days="0.5"))
    server = EmbeddedPostgres(claire_home)  # another claire holding the server, as a run does
    server.start()
    try:
        url = ok("db", "url").stdout.strip()
        assert url.startswith("postgresql://postgres:") and "***" not in url
        assert psql(url, "SELECT run_id FROM runs") == run["run_id"]
        assert json.loads(ok("db", "url", "--json").stdout) == {"url": url}
    finally:
        server.stop()


def test_db_url_without_a_running_server_says_how_to_get_one(claire_home: Path) -> None:
    ok(*replay(ETH, days="0.5"))
    result = invoke("db", "url")
    assert result.exit_code == 1
    assert f"the database server of {claire_home} is not running now" in one_line(result.output)


def _claire(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claire_cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


def test_db_psql_starts_the_server_and_sets_the_run_variable(claire_home: Path) -> None:
    run = ok_json(*replay(ETH, days="0.5"))
    done = _claire(
        "db", "psql", "--run", run["run_id"], "--", "--no-psqlrc", "-tA",
        stdin="SELECT count(*) FROM trades WHERE run_id = :'run';\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(run["fills"])
    # The server it started for the session is gone again.
    assert not (claire_home / "postgres" / "postmaster.pid").exists()


def test_db_psql_passes_its_exit_code_on() -> None:
    ok(*replay(ETH, days="0.5"))
    done = _claire("db", "psql", "--", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-c", "SELEC 1")
    assert done.returncode != 0 and "syntax error" in done.stderr
