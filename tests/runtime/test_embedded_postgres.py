"""The embedded PostgreSQL: first start, reuse, clean stop, crash recovery, root, secrets."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.errors import StoreError
from engine.runtime import (
    EmbeddedPostgres,
    ExternalPostgres,
    default_data_dir,
    postgres_program,
    postgres_service,
)
from engine.runtime.account import ServerAccount, check_reachable, running_as_root
from engine.store import Database
from tests.runtime.conftest import FAST_SETTINGS

pytestmark = pytest.mark.integration


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once `pid` has exited (a zombie counts: it runs nothing and holds nothing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def _count_notes(url: str) -> int:
    with Database(url) as db:
        db.execute("CREATE TABLE IF NOT EXISTS notes (n integer)")
        db.execute("INSERT INTO notes VALUES (1)")
        row = db.fetch_one("SELECT count(*) AS n FROM notes")
        return int(row["n"]) if row else 0


def test_first_start_initialises_a_private_cluster(scratch: Path) -> None:
    home = scratch / "fresh"

    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as pg:
        assert _count_notes(pg.url) == 1

    assert (home / "postgres" / "PG_VERSION").exists()
    assert stat.S_IMODE((home / "postgres").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "postgres.password").stat().st_mode) == 0o600
    assert not (home / "postgres.initializing").exists()


def test_data_survives_a_stop_and_the_next_start(home: Path) -> None:
    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as first:
        assert _count_notes(first.url) == 1

    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as second:
        assert _count_notes(second.url) == 2


def test_stop_ends_the_server_is_idempotent_and_frees_the_folder(home: Path) -> None:
    pg = EmbeddedPostgres(home, settings=FAST_SETTINGS)
    pg.start()
    pid = pg.pid
    assert pid is not None

    pg.stop()
    pg.stop()

    assert _gone(pid) and not pg.is_running()
    assert not (home / "postgres" / "postmaster.pid").exists()  # a clean shutdown
    with pytest.raises(StoreError, match="not running"):
        _ = pg.url
    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as again:
        assert again.is_running()


def test_a_second_claire_shares_the_server_and_the_last_to_leave_stops_it(
    server: EmbeddedPostgres,
) -> None:
    first_pid = server.pid
    second = EmbeddedPostgres(server.data_dir)
    second.start()
    assert second.pid == first_pid
    assert _count_notes(second.url) == 1

    server.stop()  # the process that started the server leaves first
    assert server.is_running() and second.pid == first_pid
    assert _count_notes(second.url) == 2  # still serving the one left

    second.stop()
    assert first_pid is not None and _gone(first_pid)
    assert not second.is_running()


def test_shutdown_stops_the_server_for_every_user(server: EmbeddedPostgres) -> None:
    pid = server.pid
    other = EmbeddedPostgres(server.data_dir)
    other.start()

    other.shutdown()

    assert pid is not None and _gone(pid)
    assert not server.is_running()
    server.stop()  # leaving a stopped server is harmless


def test_restart_keeps_the_url_and_users_reconnect(server: EmbeddedPostgres) -> None:
    pid = server.pid
    other = EmbeddedPostgres(server.data_dir)
    url = other.start()
    with Database(url) as db:
        db.execute("CREATE TABLE notes (n integer)")

        assert server.restart() == url
        assert server.pid != pid

        db.execute("INSERT INTO notes VALUES (1)")  # a pooled connection, checked and renewed
        assert db.fetch_one("SELECT count(*) AS n FROM notes") == {"n": 1}
    other.stop()
    assert server.is_running()


# A claire process that joins the folder's server, writes, reports the server's PID and
# leaves when told to (its stdin closes).
SHARER = """
import sys
from engine.runtime import EmbeddedPostgres
from engine.store import Database
pg = EmbeddedPostgres(sys.argv[1], settings={"fsync": "off"})
pg.start()
with Database(pg.url) as db, db.transaction() as tx:
    # Concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalogue;
    # the store's migrations take the same kind of lock.
    tx.execute("SELECT pg_advisory_xact_lock(4242)")
    tx.execute("CREATE TABLE IF NOT EXISTS notes (n integer)")
    tx.execute("INSERT INTO notes VALUES (1)")
print(pg.pid, flush=True)
sys.stdin.read()
pg.stop()
"""


def test_concurrent_starts_in_an_existing_folder_share_one_server(home: Path) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SHARER, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(4)
    ]
    pids = []
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip().isdigit(), child.stderr.read() if child.stderr else ""
        pids.append(int(line))

    assert len(set(pids)) == 1  # one server, shared by all four
    for child in children[:3]:
        child.communicate("")
        assert child.returncode == 0
    assert psutil.pid_exists(pids[0]) and not _gone(pids[0], timeout_s=0.2)
    children[3].communicate("")
    assert children[3].returncode == 0
    assert _gone(pids[0])
    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as pg:
        assert _count_notes(pg.url) == 5  # every sharer's row, and this one


SECRETS = {
    "MEXC_API_KEY": "planted-api-key-6f1c",
    "MEXC_API_SECRET": "planted-api-secret-93ab",
    "CLAIRE_REDIS_URL": "redis://:planted-redis-password-77d2@127.0.0.1:6379/0",
}


def test_the_server_never_sees_our_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)

    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as pg:
        assert pg.pid is not None
        _count_notes(pg.url)  # a backend exists too
        postmaster = psutil.Process(pg.pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        assert len(processes) > 2
        for process in processes:
            try:
                environ = Path(f"/proc/{process.pid}/environ").read_bytes()
            except (ProcessLookupError, FileNotFoundError):
                continue  # a backend that ended meanwhile
            for value in SECRETS.values():
                assert value.encode() not in environ, process.name()
            assert b"MEXC" not in environ and b"CLAIRE" not in environ
        # The postmaster keeps its environment readable (its children reuse the space for
        # their process titles): what it holds is the minimal one we gave it.
        environ = Path(f"/proc/{postmaster.pid}/environ").read_bytes()
        assert sorted(environ.split(b"\0")[:-1]) == [
            b"LANG=C",
            b"LC_ALL=C",
            b"PATH=/usr/bin:/bin",
            b"TZ=UTC",
        ]


def test_stop_works_from_a_signal_handler(server: EmbeddedPostgres) -> None:
    pid = server.pid
    assert pid is not None
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: server.stop())
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)  # the handler runs between bytecodes of this thread
    finally:
        signal.signal(signal.SIGUSR1, previous)

    assert _gone(pid) and not server.is_running()


# A stand-in for a claire process: starts the server, writes a row, reports, waits.
CHILD = """
import sys, time
from engine.runtime import EmbeddedPostgres
from engine.store import Database
pg = EmbeddedPostgres(sys.argv[1], settings={"fsync": "off"})
pg.start()
with Database(pg.url) as db:
    db.execute("CREATE TABLE notes (n integer)")
    db.execute("INSERT INTO notes VALUES (1)")
print(pg.pid, flush=True)
time.sleep(600)
"""


def _start_child(home: Path) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip().isdigit(), "the child did not start its server"
    return child, int(line)


def test_start_after_kill_9_of_claire_and_its_server_recovers(home: Path) -> None:
    child, postmaster = _start_child(home)
    os.kill(postmaster, signal.SIGKILL)
    child.kill()
    child.wait()
    assert _gone(postmaster)
    assert (home / "postgres" / "postmaster.pid").exists()  # stale, naming a dead process

    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as pg:
        assert pg.pid != postmaster
        assert _count_notes(pg.url) == 2  # crash recovery kept the committed row


def test_start_after_kill_9_of_claire_stops_its_orphaned_server(home: Path) -> None:
    child, postmaster = _start_child(home)
    child.kill()  # claire dies; its server keeps running, orphaned
    child.wait()
    assert psutil.pid_exists(postmaster) and not _gone(postmaster, timeout_s=0.1)

    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as pg:
        assert _gone(postmaster, timeout_s=0.1)
        assert pg.pid != postmaster
        assert _count_notes(pg.url) == 2


def test_tcp_listens_on_localhost_only(home: Path) -> None:
    with EmbeddedPostgres(home, listen="tcp", settings=FAST_SETTINGS) as pg:
        assert "@127.0.0.1:" in pg.url
        assert _count_notes(pg.url) == 1
        with Database(pg.url) as db:
            row = db.fetch_one("SELECT current_setting('listen_addresses') AS listen")
        assert row == {"listen": "127.0.0.1"}


def test_long_folder_paths_fall_back_from_socket_to_tcp(scratch: Path, home: Path) -> None:
    deep = scratch
    for _ in range(4):
        deep = deep / ("d" * 30)
        deep.mkdir(mode=0o711)
    moved = deep / "home"
    home.rename(moved)

    with EmbeddedPostgres(moved, settings=FAST_SETTINGS) as pg:
        assert "@127.0.0.1:" in pg.url and _count_notes(pg.url) == 1


def test_password_stays_out_of_repr_and_logs(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = (home / "postgres.password").read_text().strip()

    with EmbeddedPostgres(home, settings=FAST_SETTINGS) as pg:
        shown = repr(pg)
        url_repr = repr(pg.url)

    assert password not in shown and "***" in shown
    assert password not in url_repr
    for record in caplog.records:
        assert password not in record.getMessage()
        assert password not in repr(record.__dict__)


@pytest.mark.skipif(not running_as_root(), reason="only root switches to another account")
def test_as_root_the_server_runs_as_an_unprivileged_account(server: EmbeddedPostgres) -> None:
    assert server.pid is not None
    process = psutil.Process(server.pid)

    assert process.uids().effective != 0
    assert process.username() == "nobody"
    assert (server.pgdata).stat().st_uid == process.uids().effective
    assert process.gids().effective != 0


def test_unreachable_folder_for_the_server_account_is_named(scratch: Path) -> None:
    closed = scratch / "closed"
    closed.mkdir(mode=0o700)
    stranger = ServerAccount(name="stranger", uid=54321, gid=54321)

    with pytest.raises(StoreError, match=f"cannot enter {closed}.*chmod o\\+x {closed}"):
        check_reachable(stranger, closed / "home" / "postgres", "database folder")


def test_postgres_url_setting_points_at_another_server(scratch: Path) -> None:
    url = "postgresql://claire:s3cret@db.example:5432/claire"

    service = postgres_service(environ={"CLAIRE_POSTGRES_URL": url, "CLAIRE_HOME": str(scratch)})

    assert isinstance(service, ExternalPostgres)
    with service as pg:
        assert pg.start() == url == pg.url
    assert "s3cret" not in repr(service)


def test_without_url_the_service_is_embedded_in_claire_home(scratch: Path) -> None:
    service = postgres_service(environ={"CLAIRE_HOME": str(scratch / "h")})

    assert isinstance(service, EmbeddedPostgres)
    assert service.data_dir == scratch / "h"
    assert service.pgdata == scratch / "h" / "postgres"


def test_default_data_dir_prefers_argument_then_environment() -> None:
    assert default_data_dir("/x/y", {"CLAIRE_HOME": "/a"}) == Path("/x/y")
    assert default_data_dir(None, {"CLAIRE_HOME": "/a"}) == Path("/a")
    fallback = default_data_dir(None, {})
    assert fallback == Path("/var/lib/claire") if running_as_root() else "claire" in fallback.parts


def test_bundled_client_programs_are_found() -> None:
    for name in ("pg_dump", "pg_restore", "psql"):
        assert os.access(postgres_program(name), os.X_OK)
