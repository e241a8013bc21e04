#!/usr/bin/env python3
"""One entry point for set-up, the demo run, tests, lint and benchmarks.

Needs nothing but Python 3.11+: it creates `.venv`, installs the project into it
(again only when pyproject.toml changes) and runs the command there.

    python3 tasks.py run     # 7-day accelerated paper run of the shipped data
    python3 tasks.py test    # lint, type check, the documentation site and the whole test suite
    python3 tasks.py lint    # ruff check and format check, and the import layers
    python3 tasks.py types   # mypy, strict on engine/
    python3 tasks.py docs    # the documentation site (mkdocs build --strict) into build/site
    python3 tasks.py bench   # the benchmarks in bench/

`test` fails when coverage of the whole suite falls under COVERAGE_FLOOR; a run
of some tests only (`python3 tasks.py test tests/unit`, `-k name`) reports
coverage without that floor. The suite runs in parallel workers (pytest-xdist,
twice the cores by default; `-n 0` runs it in one process).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".claire-installed"
DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
DEMO_FILES = [DATA / f"{base}_BTC-5m.csv" for base in ("ETH", "LTC", "ADA", "DASH")]
COVERAGE_FLOOR = 90  # per cent of engine/ and claire_cli/ lines, over the whole suite


def sh(*args: str | Path) -> None:
    # Arguments are this script's own commands plus the user's extra arguments.
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)  # noqa: S603
    if completed.returncode:
        sys.exit(completed.returncode)


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may run on an older python3
        sys.exit("Claire de Binare needs Python 3.11 or newer; run this with python3.11+.")
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing Claire de Binare and its dependencies into .venv ...", flush=True)
    sh(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    sh(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def run(extra: list[str]) -> None:
    missing = [str(p) for p in DEMO_FILES if not p.is_file()]
    if missing:
        sys.exit(f"market data not found: {', '.join(missing)}; set CLAIRE_SHARED_DATA")
    args: list[str | Path] = [BIN / "claire", "papertest", "start", "--days", "7"]
    args += ["--speed", "max", "--capital", "10", "--reports"]
    for path in DEMO_FILES:
        args += ["--replay", path]
    sh(*args, *extra)


def lint() -> None:
    sh(PYTHON, "-m", "ruff", "check", ".")
    sh(PYTHON, "-m", "ruff", "format", "--check", ".")
    sh(BIN / "lint-imports", "--no-cache")  # the layers in pyproject.toml


def types() -> None:
    sh(PYTHON, "-m", "mypy")  # settings in pyproject.toml: strict, on engine/


def docs() -> None:
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    sh(BIN / "mkdocs", "build", "--strict", "--quiet")


def test(extra: list[str]) -> None:
    lint()
    types()
    docs()
    # Any argument that is not an option (a path, or the expression after -k or -m)
    # picks some tests only; their coverage is reported but not held to the floor.
    values = {i + 1 for i, arg in enumerate(extra) if arg in {"-n", "--numprocesses", "--dist"}}
    whole = all(
        i in values or (arg.startswith("-") and not arg.startswith(("-k", "-m")))
        for i, arg in enumerate(extra)
    )
    coverage = ["--cov", "--cov-report=term"]
    if whole:
        coverage.append(f"--cov-fail-under={COVERAGE_FLOOR}")
    sh(PYTHON, "-m", "pytest", *coverage, *workers(extra), *extra)


def workers(extra: list[str]) -> list[str]:
    """Test workers: most tests wait on servers and child processes, so twice the cores.

    `-n N` (or `-n 0` for one process, as a debugger wants) on the command line wins;
    `PYTEST_XDIST_AUTO_NUM_WORKERS` (pytest-xdist's own) sets the default. Tests that
    share one Docker engine keep to one worker, and tests that start a supervised
    services run to two (`--dist loadgroup`, groups set in tests/conftest.py).
    """
    if any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in extra):
        return []
    count = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or str(2 * (os.cpu_count() or 1))
    return ["-n", count, "--dist", "loadgroup", "--durations=25"]


def main() -> None:
    command, extra = (sys.argv[1] if len(sys.argv) > 1 else "help"), sys.argv[2:]
    if command not in {"run", "test", "lint", "types", "docs", "bench"}:
        print(__doc__)
        sys.exit(0 if command in {"help", "-h", "--help"} else 2)
    ensure_env()
    if command == "run":
        run(extra)
    elif command == "lint":
        lint()
    elif command == "types":
        types()
    elif command == "docs":
        docs()
    elif command == "test":
        test(extra)
    else:
        for bench in sorted((ROOT / "bench").glob("*.py")):
            print(f"== {bench.name}", flush=True)
            sh(PYTHON, bench, *extra)


if __name__ == "__main__":
    main()
