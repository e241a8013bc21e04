"""One data folder, two claire processes at once: the second never breaks the first.

Each trial starts a paced run and, at a random moment (before it, during its
start-up, in its middle or after its end), a second command in the same folder:
another run, `papertest status`, `report --final` or `export`. Both share the
folder's one PostgreSQL; the server stays up until the last of them leaves.
Set CLAIRE_SHARING_TRIALS to run more trials than the suite's five.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.config import load_settings
from engine.home.database import open_store
from tests.paperrun.runs import Fill, claire_process, replay_args, stored_fills, unbroken_fills

pytestmark = pytest.mark.integration
runner = CliRunner()
DAYS = 2
RUN = ("--json", "--speed", "60000x")  # about 3 s of replay
TRIALS = int(os.environ.get("CLAIRE_SHARING_TRIALS", "5"))
SECOND = ("run", "status", "report", "export", "run", "status", "report", "export")
# What a report or export may answer before the run has written anything to report on.
# "no run in FOLDER yet" once the database exists but the first run's row does not yet.
NOT_YET = (
    "no run in this data folder yet",
    "has no portfolio snapshot yet",
    "yet; start one with `claire papertest start`",
)


@pytest.fixture(scope="module")
def files(four_symbols: list[Path]) -> list[Path]:
    return four_symbols[:2]


@pytest.fixture(scope="module")
def expected(files: list[Path]) -> list[Fill]:
    return unbroken_fills(files, DAYS)


def second_command(kind: str, files: list[Path]) -> list[str]:
    # Preflight refuses a second run in a folder where one is active: here it is meant.
    return {
        "run": replay_args(files, *RUN, "--ignore-check", "active_runs", days=str(DAYS)),
        "status": ["papertest", "status", "--json"],
        "report": ["report", "--final", "--format", "json"],
        "export": ["export", "trades", "--format", "json"],
    }[kind]


def finish(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = child.communicate(timeout=180)
    return child.returncode, out, err


@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_second_command_beside_a_run_never_breaks_it(
    trial: int, files: list[Path], claire_home: Path, expected: list[Fill]
) -> None:
    rng = random.Random(trial)
    if trial == 0:
        kind, offset = "run", 0.0  # two runs started together in a folder never used yet
    else:
        kind, offset = SECOND[trial % len(SECOND)], rng.uniform(0.0, 4.0)
        with open_store(load_settings(), claire_home):  # an existing, initialised folder
            pass

    # Beside a second run, either may reach the preflight first and see the other active.
    ignore = ("--ignore-check", "active_runs") if kind == "run" else ()
    first = claire_process(replay_args(files, *RUN, *ignore, days=str(DAYS)))
    time.sleep(offset)
    second = claire_process(second_command(kind, files))
    code, out, err = finish(first)
    code2, out2, err2 = finish(second)

    context = f"trial {trial}: {kind} after {offset:.2f} s"
    assert code == 0, f"{context}: {err}"
    run = json.loads(out)
    assert run["status"] == "completed", context
    assert stored_fills(claire_home, run["run_id"]) == expected, context
    assert "Traceback" not in err + err2, context
    if kind == "run":
        assert code2 == 0, f"{context}: {err2}"
        other = json.loads(out2)
        assert other["status"] == "completed" and other["run_id"] != run["run_id"]
        assert stored_fills(claire_home, other["run_id"]) == expected, context
    elif kind == "status":
        assert code2 == 0, f"{context}: {err2}"
        listed = {r["run_id"]: r["status"] for r in json.loads(out2)}
        # Never "interrupted" while its process is alive.
        assert listed.get(run["run_id"], "running") in ("running", "completed"), context
    elif code2 != 0:
        assert any(reason in err2 for reason in NOT_YET), f"{context}: {err2}"
    else:
        json.loads(out2)  # a complete answer
