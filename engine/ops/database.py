"""Hands-on access to a data folder's database: `claire db url` and `claire db psql`.

The embedded server authenticates with a password (scram-sha-256, even on its
socket). `psql` gets it through `PGPASSWORD` in its environment, never on its
command line, where other users of the machine could read it. Ctrl-C is psql's;
SIGTERM or SIGHUP (a closed terminal, `kill` of the process group) ends psql and
then the session, so a server started for it is stopped, not left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from engine.config import Settings
from engine.errors import ClaireError
from engine.runtime import postgres_program, postgres_service
from engine.runtime.postgres import attach_url


class ServerNotRunning(ClaireError):
    pass


def running_url(settings: Settings, folder: Path) -> str:
    """The URL of the server that serves `folder` right now (or CLAIRE_POSTGRES_URL)."""
    if settings.claire_postgres_url is not None:
        return settings.claire_postgres_url.get_secret_value()
    url = attach_url(folder)
    if url is None:
        raise ServerNotRunning(
            f"the database server of {folder} is not running now; it runs while a paper run "
            "does, and `claire db psql` starts it for a session."
        )
    return str(url)


@contextmanager
def served(settings: Settings, folder: Path) -> Iterator[str]:
    """A URL to the folder's database, starting the embedded server for the block if needed."""
    external = settings.claire_postgres_url
    chosen = external.get_secret_value() if external is not None else attach_url(folder)
    with postgres_service(url=chosen, data_dir=folder) as service:
        yield service.url


@dataclass(frozen=True)
class PsqlCall:
    argv: list[str]
    env: dict[str, str]


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without the password in its user info, and that password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    netloc = f"{user}@{host}" if user else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, unquote(parts.password)


def psql_call(url: str, run_id: str | None = None, extra: Sequence[str] = ()) -> PsqlCall:
    """The wheel's `psql` on `url`; `run_id` becomes the psql variable `run`."""
    bare, password = split_password(url)
    argv = [str(postgres_program("psql")), "--dbname", bare]
    if run_id:
        argv += ["--set", f"run={run_id}"]
    argv += list(extra)
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGSERVICE")}
    if password is not None:
        env["PGPASSWORD"] = password
    return PsqlCall(argv, env)


def run_psql(call: PsqlCall, script: str | None = None) -> int:
    """Run psql to its end (reading `script` on its standard input when given); its exit
    code, or 128 + the signal that ended the session."""
    ended: list[int] = []
    stdin = subprocess.PIPE if script is not None else None
    proc = subprocess.Popen(call.argv, env=call.env, stdin=stdin)  # noqa: S603 - bundled psql

    def forward(signum: int, frame: object) -> None:
        ended.append(signum)
        if proc.poll() is None:
            proc.send_signal(signum)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in handled}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is psql's
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    try:
        if script is not None:
            proc.communicate(script.encode())
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 + ended[0] if ended else code
