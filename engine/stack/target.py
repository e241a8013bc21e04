"""Which database a command uses: the one resolution step of the runbook's commands.

In this order:
1. `CLAIRE_POSTGRES_URL` (and `CLAIRE_REDIS_URL`) when set: the servers named there.
2. `--stack`: the Docker stack's PostgreSQL and Redis as compose/.env publishes them on
   this machine (127.0.0.1, its ports and passwords); an error naming `claire stack up`
   when no stack is there. `--no-stack`: the data folder.
3. `--data-dir` or `CLAIRE_HOME`: that data folder, which the user named.
4. A stack that exists (containers of the project `CLAIRE_STACK_PROJECT`) and whose
   passwords compose/.env (or the environment) gives: the stack.
5. The data folder.

The answer is the settings the command goes on with (the stack's URLs in place of the
embedded servers'), so `open_data`, `open_store` and the backups need no change: the
data folder stays where backups, reports and bundles are written. Finding a stack costs
nothing without Docker (no DOCKER_HOST and no socket: no stack) and at most
`DOCKER_CHECK_S` with a Docker engine that does not answer.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pydantic import SecretStr

from engine.config import Settings
from engine.errors import ClaireError, ConfigError
from engine.runtime.urls import redact_url
from engine.stack.config import StackConfig
from engine.stack.spec import LABEL_PROJECT

log = logging.getLogger(__name__)

DOCKER_CHECK_S: Final = 2.0
DOCKER_SOCKET: Final = Path("/var/run/docker.sock")
PORT_CHECK_S: Final = 0.5

TargetKind = Literal["url", "stack", "folder"]


class NoStackError(ClaireError):
    """`--stack` was given and no stack is there."""


@dataclass(frozen=True)
class Target:
    """The settings a command goes on with, and which database they name."""

    kind: TargetKind
    settings: Settings
    database: str  # redacted URL, or "" for the data folder's embedded server
    project: str = ""

    def describe(self) -> str:
        """One line for the command's output; never a password."""
        if self.kind == "stack":
            return f"database: the stack {self.project}'s PostgreSQL at {self.database}"
        if self.kind == "url":
            return f"database: CLAIRE_POSTGRES_URL {self.database}"
        return "database: the data folder's"

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "database": self.database, "project": self.project}


def docker_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a Docker engine could be there at all (DOCKER_HOST, or the local socket)."""
    env = os.environ if environ is None else environ
    return bool(env.get("DOCKER_HOST")) or DOCKER_SOCKET.exists()


# A Docker engine that did not answer is not asked again for this long (one command
# asks twice: which database, then the stack's containers for `claire status`).
SILENT_FOR_S: Final = 30.0
_silent_until: dict[str, float] = {}


def stack_present(project: str, timeout_s: float = DOCKER_CHECK_S) -> bool:
    """Whether the Docker engine holds a container of `project`; False without Docker,
    and False (not a wait) when the engine does not answer within `timeout_s`."""
    if not docker_configured():
        return False
    engine = os.environ.get("DOCKER_HOST", "") or str(DOCKER_SOCKET)
    if time.monotonic() < _silent_until.get(engine, 0.0):
        return False
    try:
        import docker

        client = docker.from_env(timeout=max(1, round(timeout_s)))
        try:
            found = client.containers.list(
                all=True, limit=1, sparse=True, filters={"label": f"{LABEL_PROJECT}={project}"}
            )
        finally:
            client.close()
    except Exception as exc:  # any failure means no stack to use
        log.debug("no stack found: %s", type(exc).__name__)
        _silent_until[engine] = time.monotonic() + SILENT_FOR_S
        return False
    return bool(found)


def published_postgres_answers(config: StackConfig, timeout_s: float = PORT_CHECK_S) -> bool:
    """Whether something accepts connections on the stack's published PostgreSQL port."""
    try:
        with socket.create_connection(("127.0.0.1", config.postgres_port), timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_target(
    settings: Settings,
    *,
    stack: bool | None = None,
    data_dir: Path | str | None = None,
    compose_dir: Path | None = None,
    present: Callable[[str], bool] = stack_present,
    answers: Callable[[StackConfig], bool] = published_postgres_answers,
) -> Target:
    """The database a runbook command uses (see the module's docstring for the order)."""
    external = settings.claire_postgres_url
    if external is not None:
        return Target("url", settings, redact_url(external.get_secret_value()))
    folder = Target("folder", settings, "")
    if stack is False:
        return folder
    if stack is None:
        if data_dir is not None or settings.claire_home is not None:
            return folder
        try:
            config = StackConfig.load(compose_dir)
        except ConfigError:
            return folder  # a stack's settings that do not parse: not a stack to use
        if not present(config.project):
            return folder
        try:
            return _stack_target(settings, config)
        except ConfigError:
            return folder  # a stack this machine has no passwords for: not one to use
    config = StackConfig.load(compose_dir)
    if not (present(config.project) or answers(config)):
        raise NoStackError(
            f"no stack {config.project} is running on this machine (no container, nothing on "
            f"port {config.postgres_port}); start it with `claire stack up`, or leave out --stack."
        )
    return _stack_target(settings, config)


def _stack_target(settings: Settings, config: StackConfig) -> Target:
    postgres, redis = config.postgres_url(), config.redis_url()
    chosen = settings.model_copy(
        update={"claire_postgres_url": SecretStr(postgres), "claire_redis_url": SecretStr(redis)}
    )
    return Target("stack", chosen, redact_url(postgres), config.project)


__all__ = [
    "NoStackError",
    "Target",
    "docker_configured",
    "published_postgres_answers",
    "resolve_target",
    "stack_present",
]
