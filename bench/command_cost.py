"""Wall and CPU time of whole `claire` commands, their child processes included.

Each command runs as its own process, as an operator would type it; CPU is user
plus system time of that process and everything it started (the embedded
PostgreSQL, pg_dump, report workers), from getrusage(RUSAGE_CHILDREN).

- the persisted 7-day and 20-day 4-symbol replays, side by side with --no-persist,
  in a fresh data folder (its database made, no runs) and in a reused one that
  holds earlier runs (20 by default);
- `claire --help` and `claire status --json` on an empty data folder.

The project's bytecode is compiled first, as pip does when it installs a package: an
editable install under PYTHONDONTWRITEBYTECODE would otherwise compile every module
of the engine again in each command.

    python bench/command_cost.py [--earlier 20] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CLAIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "market"
FILES = [DATA / f"{base}_BTC-5m.csv" for base in ("ETH", "LTC", "ADA", "DASH")]
CLAIRE = Path(sys.executable).parent / "claire"


def measure(args: list[str], home: Path, codes: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Wall and CPU seconds (children included) of one command; fails loudly on an exit
    code not in `codes`."""
    env = {**os.environ, "CLAIRE_HOME": str(home), "INITIAL_CAPITAL": "10"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(CLAIRE), *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in codes:
        sys.exit(f"claire {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def best(
    args: list[str], home: Path, repeat: int, codes: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    runs = [measure(args, home, codes) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def made(home: Path) -> None:
    """The folder's database created and migrated (initdb is not what is measured)."""
    code = (
        "import sys; from pathlib import Path; from engine.config import load_settings; "
        "from engine.home.database import open_store\n"
        "with open_store(load_settings(), Path(sys.argv[1])): pass"
    )
    subprocess.run([sys.executable, "-c", code, str(home)], check=True)


def replay(days: int, persist: bool = True) -> list[str]:
    args = ["papertest", "start", "--days", str(days), "--speed", "max", "--json"]
    for path in FILES:
        args += ["--replay", str(path)]
    return args if persist else [*args, "--no-persist"]


def folder() -> Path:
    home = Path(tempfile.mkdtemp(prefix="claire-cost-"))
    os.chmod(home, 0o711)
    return home


def line(what: str, cost: tuple[float, float]) -> None:
    print(f"{what:<44} wall {cost[0]:6.2f} s   cpu {cost[1]:6.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--earlier", type=int, default=20, help="runs in the reused folder")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many")
    args, _ = parser.parse_known_args()
    missing = [str(p) for p in FILES if not p.is_file()]
    if missing:
        sys.exit(f"market data not found: {', '.join(missing)}; set CLAIRE_SHARED_DATA")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "engine"), str(ROOT / "claire_cli")],
        check=True,
    )
    homes: list[Path] = []
    try:
        empty = folder()
        homes.append(empty)
        line("claire --help", best(["--help"], empty, max(args.repeat, 3)))
        line(
            "claire status --json (empty folder)", best(["status", "--json"], empty, 3, (2,))
        )  # 2: no run

        for days in (7, 20):
            line(f"{days}-day replay --no-persist", best(replay(days, False), empty, args.repeat))

        first = folder()
        homes.append(first)
        line("7-day replay, first run (initdb included)", measure(replay(7), first))
        for days in (7, 20):
            fresh = folder()
            homes.append(fresh)
            made(fresh)  # the database made, no runs
            line(f"{days}-day replay, fresh folder", best(replay(days), fresh, args.repeat))

        reused = folder()
        homes.append(reused)
        t0 = time.perf_counter()
        for _ in range(args.earlier):
            measure(replay(7), reused)
        print(f"({args.earlier} earlier 7-day runs took {time.perf_counter() - t0:.1f} s)")
        for days in (7, 20):
            line(
                f"{days}-day replay, {args.earlier} earlier runs",
                best(replay(days), reused, args.repeat),
            )
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
