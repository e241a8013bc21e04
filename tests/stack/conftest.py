"""A Docker engine for the stack's tests, and the images they need, once per session.

A Docker engine that answers (DOCKER_HOST or the default socket) and holds no stack
of ours is used as it is. Otherwise the session starts its own `dockerd` (installing
Debian's `docker.io` first when it is missing and the tests run as root) with its
data, state and socket in a temporary folder, the vfs storage driver, no iptables
and no bridge, so containers use the host's network; it is stopped at the end. The
tests are skipped, saying why, only when no engine can be had.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import docker
import docker.errors
import pytest

from engine.runtime import EmbeddedPostgres
from engine.runtime.redis import EmbeddedRedis
from engine.stack.containers import LABEL_PROJECT
from engine.stack.spec import PROJECT, VOLUMES, volume_name

STARTUP_S = 90
# The tests' own project: their containers, volumes and network never bear the names of
# a stack someone runs (CLAIRE_STACK_PROJECT; the stack_env fixture sets it).
TEST_PROJECT = "claire-tests"


def _answers(base_url: str | None) -> bool:
    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        return False
    for project in (PROJECT, TEST_PROJECT):  # a stack someone runs, or one a test left
        if client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project}"}):
            return False
        names = {volume_name(n, project) for n in VOLUMES}
        if any(v.name in names for v in client.volumes.list()):
            return False
    return True  # the stand-in images replace the official ones: only on an idle engine


def _install_docker() -> str | None:
    """Debian's docker.io, when missing and we are root; the reason when not possible."""
    if shutil.which("dockerd"):
        return None
    if os.geteuid() != 0:
        return "dockerd is not installed and the tests do not run as root to install it"
    if not shutil.which("apt-get"):
        return "dockerd is not installed and there is no apt-get to install docker.io"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker.io"]
    for args in (["apt-get", "update", "-qq"], install):
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            return f"installing docker.io failed: {done.stderr.strip()[-300:]}"
    return None if shutil.which("dockerd") else "docker.io installed no dockerd"


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """The DOCKER_HOST the stack's tests use."""
    if os.environ.get("DOCKER_HOST") and _answers(os.environ["DOCKER_HOST"]):
        yield os.environ["DOCKER_HOST"]
        return
    if _answers("unix:///var/run/docker.sock"):
        yield "unix:///var/run/docker.sock"
        return
    reason = _install_docker()
    if reason is not None:
        pytest.skip(f"no Docker engine for the stack tests: {reason}")
    if os.geteuid() != 0:
        pytest.skip("no Docker engine for the stack tests: dockerd needs root to start here")
    folder = Path(tempfile.mkdtemp(prefix="cdb-dockerd-"))
    sock = folder / "docker.sock"
    url = f"unix://{sock}"
    log = (folder / "dockerd.log").open("wb")
    daemon = subprocess.Popen(
        ["dockerd", "--storage-driver=vfs", "--iptables=false", "--ip6tables=false",
         "--bridge=none", "--data-root", str(folder / "root"), "--exec-root",
         str(folder / "exec"), "-H", url, "--pidfile", str(folder / "docker.pid")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_S
        while not (sock.exists() and _answers(url)):
            if daemon.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "dockerd.log").read_text(errors="replace")[-600:]
                pytest.skip(f"no Docker engine for the stack tests: dockerd did not start: {tail}")
            time.sleep(0.3)
        yield url
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=30)
        log.close()
        _unmount_under(folder)  # dockerd leaves its network namespace mounted
        shutil.rmtree(folder, ignore_errors=True)


def _unmount_under(folder: Path) -> None:
    mounts = Path("/proc/mounts").read_text().splitlines()
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(str(folder))), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="session")
def stack_images(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The stand-in base images and the engine image, built once; returns build seconds."""
    from engine.stack.config import StackConfig
    from engine.stack.containers import build
    from tests.stack.images import build_context, build_stand_ins

    client = docker.DockerClient(base_url=docker_host, timeout=600)
    work = tmp_path_factory.mktemp("images")
    began = time.monotonic()
    build_stand_ins(client, work)
    bases = time.monotonic() - began
    context = build_context(work)
    previous = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = docker_host
    try:
        build(StackConfig(env={}, context=context, network="host"))
    finally:
        if previous is None:
            del os.environ["DOCKER_HOST"]
        else:
            os.environ["DOCKER_HOST"] = previous
    shutil.rmtree(work, ignore_errors=True)
    return {"bases_s": bases, "engine_s": time.monotonic() - began - bases}


STACK_PASSWORD = "StackOnlyPw0rd"


@pytest.fixture(scope="session")
def stack_port() -> Iterator[int]:
    """A stand-in for the stack's published PostgreSQL, without Docker: an embedded
    server on 127.0.0.1 with the stack's user `claire` (STACK_PASSWORD) and database."""
    import psycopg

    from engine.runtime import EmbeddedPostgres

    base = Path(tempfile.mkdtemp(prefix="claire-stack-pg-"))
    os.chmod(base, 0o711)
    fast = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    server = EmbeddedPostgres(base, listen="tcp", settings=fast)
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE claire LOGIN SUPERUSER PASSWORD '{STACK_PASSWORD}'")
        port = urlsplit(server.url).port
        assert port is not None
        yield port
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def backing(claire_home: Path) -> Iterator[dict[str, str]]:
    """The stack's PostgreSQL and Redis, embedded in the test's data folder."""
    fast = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    postgres = EmbeddedPostgres(claire_home, settings=fast)
    # A folder too deep for a Unix socket: the Redis listens on 127.0.0.1, as the
    # stack's is published, so `claire stack wait` can reach it by port.
    redis_server = EmbeddedRedis(claire_home / ("redis-on-tcp-" + "x" * 100))
    urls = {"CLAIRE_POSTGRES_URL": postgres.start(), "CLAIRE_REDIS_URL": redis_server.start()}
    try:
        yield urls
    finally:
        redis_server.stop()
        postgres.stop()
