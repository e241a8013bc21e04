"""Where the stack's files are and which values its variables take.

Variables come from `compose/.env` with the process environment over it (as
`docker compose` does). `CLAIRE_STACK_NETWORK` is `bridge` (default) or `host`;
`CLAIRE_STACK_PROJECT` names the stack's project (default `claire`, engine.stack.spec).
`CLAIRE_COMPOSE_DIR` names the folder of the compose file and its .env (default: the
repository's compose/).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dotenv import dotenv_values

from engine.errors import ConfigError
from engine.stack.spec import BY_NAME, PROJECT, MissingVariable, Network, Service, interpolate

_PROJECT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)
ROOT: Final = Path(__file__).resolve().parents[2]  # the repository: the build context
COMPOSE_DIR: Final = ROOT / "compose"


@dataclass(frozen=True)
class StackConfig:
    env: Mapping[str, str]
    compose_dir: Path = COMPOSE_DIR
    context: Path = ROOT
    network: Network = "bridge"
    monitoring: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    project: str = PROJECT

    @classmethod
    def load(
        cls,
        compose_dir: Path | None = None,
        context: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> StackConfig:
        folder = compose_dir or compose_folder(os.environ if environ is None else environ)
        env_file = folder / ".env"
        values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        values.update(os.environ if environ is None else environ)
        network = values.get("CLAIRE_STACK_NETWORK", "bridge") or "bridge"
        if network not in ("bridge", "host"):
            raise ConfigError(
                f"CLAIRE_STACK_NETWORK is {network!r}; set it to bridge (the default) or host."
            )
        project = values.get("CLAIRE_STACK_PROJECT", "").strip() or PROJECT
        if not _PROJECT_NAME.fullmatch(project):
            raise ConfigError(
                f"CLAIRE_STACK_PROJECT is {project!r}; use lower-case letters, digits, - and _ "
                "(up to 63, starting with a letter or digit), or unset it for the default."
            )
        return cls(
            env=values,
            compose_dir=folder,
            context=context or ROOT,
            network="host" if network == "host" else "bridge",
            project=project,
        )

    def value(self, text: str) -> str:
        try:
            return interpolate(text, self.env)
        except MissingVariable as exc:
            raise ConfigError(f"{exc}: copy compose/.env.example to compose/.env.") from None

    def ports(self, service: Service) -> list[tuple[int, int]]:
        """(host port, container port) pairs of a service."""
        return [
            (_port(self.value(host), host), _port(self.value(inner), inner))
            for host, inner in service.ports
        ]

    @property
    def run_id(self) -> str:
        return self.value("${CLAIRE_RUN_ID:-stack}")

    @property
    def redis_port(self) -> int:
        return self.ports(BY_NAME["cdb_redis"])[0][0]

    @property
    def postgres_port(self) -> int:
        return self.ports(BY_NAME["cdb_postgres"])[0][0]

    def redis_url(self) -> str:
        """The stack's Redis as this machine reaches it (port published on 127.0.0.1)."""
        password = self.value("${REDIS_PASSWORD:?set REDIS_PASSWORD in compose/.env}")
        return f"redis://:{password}@127.0.0.1:{self.redis_port}/0"

    def postgres_url(self) -> str:
        password = self.value("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in compose/.env}")
        return f"postgresql://claire:{password}@127.0.0.1:{self.postgres_port}/claire"


def compose_folder(environ: Mapping[str, str]) -> Path:
    """CLAIRE_COMPOSE_DIR, else the repository's compose/ folder."""
    chosen = environ.get("CLAIRE_COMPOSE_DIR", "").strip()
    return Path(chosen).expanduser() if chosen else COMPOSE_DIR


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(f"port {text!r} (from {spec}) is not a port; set a number 1-65535.")
    return int(text)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
