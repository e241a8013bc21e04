"""Hostile rows in a persisted run: refused one by one, logged, stored with the run, reported."""

from __future__ import annotations

import csv
import io
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from claire_cli.main import app
from tests.hostile import HOSTILE_ROWS
from tests.paperrun.runs import replay_args, stored_fills, unbroken_fills

pytestmark = pytest.mark.integration
runner = CliRunner()
BAD_ROWS = 300
DAYS = 2


def claire(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_hostile_rows_are_refused_logged_stored_and_reported(
    four_symbols: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(7)
    header, *rows = four_symbols[0].read_bytes().splitlines()
    good = rows[: 288 * DAYS]
    clean = tmp_path / "clean" / four_symbols[0].name
    clean.parent.mkdir()
    clean.write_bytes(b"\n".join([header, *good]) + b"\n")
    lines: list[bytes] = [good[0]]
    kinds = ["good"] * (len(good) - 1) + ["bad"] * BAD_ROWS
    rng.shuffle(kinds)
    bad_lines, next_good = [], 1
    for kind in kinds:
        if kind == "good":
            lines.append(good[next_good])
            next_good += 1
        else:
            slot = int(lines[-1].split(b",")[0]) if lines[-1][:1].isdigit() else 1515560100000
            lines.append(rng.choice(HOSTILE_ROWS)(rng, slot + 300_000))
            bad_lines.append(len(lines) + 1)  # the header is line 1
    hostile = tmp_path / "hostile" / four_symbols[0].name
    hostile.parent.mkdir()
    hostile.write_bytes(b"\n".join([header, *lines]) + b"\n")

    caplog.set_level(logging.WARNING, logger="claire.replay")
    run = json.loads(claire(*replay_args([hostile], "--json", days=str(DAYS))).output)

    assert run["status"] == "completed"
    assert run["rejected_input"] == BAD_ROWS
    # Every good row was kept: the fills are those of the clean file.
    assert stored_fills(Path(run["data_dir"]), run["run_id"]) == unbroken_fills([clean], DAYS)

    skipped = [r.getMessage() for r in caplog.records if "skipped line" in r.getMessage()]
    assert len(skipped) == 10
    assert skipped[0].startswith(f"skipped line {bad_lines[0]} of {hostile.name}: ")
    assert any(f"{BAD_ROWS} rows refused in all" in r.getMessage() for r in caplog.records)

    report = json.loads(claire("report", "--final", "--format", "json").output)
    assert report["rejected_input"] == BAD_ROWS
    assert sum(report["rejected_by_reason"].values()) == BAD_ROWS
    assert set(report["rejected_by_reason"]) <= {
        "out_of_range", "bad_time", "not_a_number", "not_finite", "not_positive", "negative",
        "inconsistent_candle", "short_row", "not_utf8", "line_too_long",
    }  # fmt: skip
    markdown = claire("report", "--final").output
    assert f"{BAD_ROWS} input rows were refused" in markdown

    exported = claire("export", "rejected_rows", "--format", "csv").output
    stored = list(csv.DictReader(io.StringIO(exported)))
    assert [int(r["line"]) for r in stored] == bad_lines
    assert {r["source"] for r in stored} == {str(hostile)}
    assert all(r["reason"].split(":")[0] in report["rejected_by_reason"] for r in stored)
