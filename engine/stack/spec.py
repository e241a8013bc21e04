"""The Docker stack's shape: one Python description, the compose file rendered from it.

`compose/docker-compose.yml` is generated from `STACK` (`render_compose`), and a test
keeps the checked-in file equal to it; `claire stack` creates the containers from the
same description through the Docker SDK. Values may hold compose variables
(`${NAME}`, `${NAME:-default}`, `${NAME:?message}`, `$$`), resolved the way
`docker compose` does from the environment and `compose/.env` (`interpolate`).

Two networks: `bridge` (the compose file: one network, containers reach each other
by name, ports published on 127.0.0.1) and `host` (`CLAIRE_STACK_NETWORK=host`: every
container on the host's network, each container name mapped to 127.0.0.1, so every
port in `.env` must be free on the machine).

`CLAIRE_STACK_PROJECT` (default `claire`) names the stack's project for `claire stack`:
its labels, volumes and network, and its containers' names; the default project keeps
the services' names (`cdb_risk`), another puts its name before them (`mine_cdb_risk`),
so two stacks live side by side on one Docker engine (the containers still reach each
other by the services' names). The compose file is the default project's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

ENGINE_IMAGE: Final = "claire-de-binare:latest"
BASE_IMAGE: Final = "python:3.11-slim"  # the engine image's base (compose/Dockerfile)
REDIS_IMAGE: Final = "redis:7.4-bookworm"
POSTGRES_IMAGE: Final = "postgres:18-bookworm"
PROMETHEUS_IMAGE: Final = "prom/prometheus:v3.5.0"
GRAFANA_IMAGE: Final = "grafana/grafana:12.1.1"
PROJECT: Final = "claire"  # the default project (CLAIRE_STACK_PROJECT): today's names
LABEL_PROJECT: Final = "com.docker.compose.project"  # the project a container belongs to
DATA_DIR: Final = "/var/lib/claire"  # the engine containers' data folder (a named volume)
MARKET_DIR: Final = "/data/market"  # the replay's market data, mounted read-only

Network = Literal["bridge", "host"]

# The engine's /health, read with the standard library (the image has no curl).
HEALTH_PY: Final = (
    "import os, urllib.request; urllib.request.urlopen("
    "'http://127.0.0.1:' + os.environ.get('CLAIRE_HEALTH_PORT', '8000') + '/health', timeout=4)"
)
LOG_DRIVER: Final = "json-file"
LOG_OPTIONS: Final[dict[str, str]] = {"max-size": "10m", "max-file": "3"}


@dataclass(frozen=True)
class Health:
    test: list[str]
    interval: str = "${CLAIRE_HEALTH_INTERVAL:-10s}"
    timeout: str = "5s"
    retries: int = 5
    start_period: str = "20s"
    start_interval: str = "1s"


@dataclass(frozen=True)
class Service:
    """One container of the stack; `name` is both the compose service and the container."""

    name: str
    image: str
    command: list[str] | None
    health: Health | None
    cpus: str
    memory: str
    ports: list[tuple[str, str]] = field(default_factory=list)  # (host port, inner port)
    environment: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)  # "volume:/path" or "./dir:/path:ro"
    depends_on: dict[str, str] = field(default_factory=dict)  # name -> condition
    restart: str = "unless-stopped"
    build: bool = False  # the engine image, built from compose/Dockerfile
    engine: str | None = None  # the engine service this container runs
    monitoring: bool = False
    reached: bool = True  # other containers reach it by name (it serves something)

    @property
    def one_shot(self) -> bool:
        return self.restart == "no"


_PG = "${POSTGRES_PORT:-5432}"
_REDIS = "${REDIS_PORT:-6379}"
_PG_URL = "postgresql://claire:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in compose/.env}"
_ENGINE_ENV: Final = {
    "CLAIRE_POSTGRES_URL": _PG_URL + "@cdb_postgres:" + _PG + "/claire",
    "CLAIRE_REDIS_URL": (
        "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in compose/.env}@cdb_redis:" + _REDIS + "/0"
    ),
    "CLAIRE_HOME": DATA_DIR,
    "CLAIRE_LOG_LEVEL": "${CLAIRE_LOG_LEVEL:-info}",
    "INITIAL_CAPITAL": "${INITIAL_CAPITAL:-10}",
    "CLAIRE_HTTP_PORT": "off",
    # Reachable by Prometheus on the stack's network; `claire stack` on the host
    # network keeps them on 127.0.0.1.
    "CLAIRE_HTTP_HOST": "0.0.0.0",  # noqa: S104 - inside the container, published on 127.0.0.1
}
# The live feed's settings, carried into the run's containers as compose/.env sets them
# (engine.stack.checks validates them first): CLAIRE_EXCHANGE empty means a replay.
# `claire stack` leaves out the empty ones, so a replay stack's containers stay as they were.
LIVE_ENV: Final = {
    "CLAIRE_EXCHANGE": "${CLAIRE_EXCHANGE:-}",
    "CLAIRE_MARKET": "${CLAIRE_MARKET:-}",
    "CLAIRE_SYMBOLS": "${CLAIRE_SYMBOLS:-}",
    "CLAIRE_LIVE_DAYS": "${CLAIRE_LIVE_DAYS:-}",
    "CLAIRE_MEXC_SPOT_REST_URL": "${CLAIRE_MEXC_SPOT_REST_URL:-}",
    "CLAIRE_MEXC_SPOT_WS_URL": "${CLAIRE_MEXC_SPOT_WS_URL:-}",
    "CLAIRE_MEXC_FUTURES_REST_URL": "${CLAIRE_MEXC_FUTURES_REST_URL:-}",
    "CLAIRE_MEXC_FUTURES_WS_URL": "${CLAIRE_MEXC_FUTURES_WS_URL:-}",
}
_BACKING = {"cdb_redis": "service_healthy", "cdb_postgres": "service_healthy"}

# container name -> (engine service, port variable, default port)
ENGINE_SERVICES: Final = {
    "cdb_ws": ("feed", "CLAIRE_FEED_PORT", 8000),
    "cdb_core": ("signal", "CLAIRE_SIGNAL_PORT", 8001),
    "cdb_risk": ("risk", "CLAIRE_RISK_PORT", 8002),
    "cdb_execution": ("execution", "CLAIRE_EXECUTION_PORT", 8003),
    "cdb_portfolio": ("portfolio", "CLAIRE_PORTFOLIO_PORT", 8004),
    "cdb_db_writer": ("writer", "CLAIRE_WRITER_PORT", 8005),
    "cdb_alerts": ("alerts", "CLAIRE_ALERTS_PORT", 8006),
}


def _engine(container: str) -> Service:
    """An engine service; the feed starts once every other one is healthy."""
    name, variable, default = ENGINE_SERVICES[container]
    consumers = {c: "service_healthy" for c in ENGINE_SERVICES if c != "cdb_ws"}
    port = f"${{{variable}:-{default}}}"
    command = ["claire", "engine", "run", name, "--run", "${CLAIRE_RUN_ID:-stack}"]
    return Service(
        name=container,
        image=ENGINE_IMAGE,
        build=True,
        engine=name,
        command=[*command, "--data-dir", DATA_DIR, "--port", port],
        health=Health(["CMD", "python", "-c", HEALTH_PY], start_period="30s"),
        cpus="1.0",
        memory="512m",
        ports=[(port, port)],
        environment={
            **_ENGINE_ENV,
            **LIVE_ENV,
            "CLAIRE_HEALTH_PORT": port,
            # The alerts service sends notifications (a secret, never logged).
            **({"CLAIRE_NOTIFY_URLS": "${CLAIRE_NOTIFY_URLS:-}"} if name == "alerts" else {}),
        },
        volumes=[
            "claire_data:" + DATA_DIR,
            "${CLAIRE_MARKET_DATA:-../../shared/data/market}:" + MARKET_DIR + ":ro",
        ],
        depends_on={
            **_BACKING,
            "cdb_init": "service_completed_successfully",
            **(consumers if name == "feed" else {}),
        },
    )


_ALL_ADDRESSES: Final = "0.0.0.0"  # noqa: S104 - inside the container, published on 127.0.0.1


def _web() -> Service:
    """The web view of the stack's run (`claire web`), read-only, beside Grafana. It
    listens on every address inside its container, so it needs its token."""
    port = "${CLAIRE_WEB_PORT:-8080}"
    return Service(
        name="cdb_web",
        image=ENGINE_IMAGE,
        build=True,
        command=[
            *("claire", "web", "--run", "${CLAIRE_RUN_ID:-stack}", "--data-dir", DATA_DIR),
            *("--host", _ALL_ADDRESSES, "--port", port),
        ],
        health=Health(["CMD", "python", "-c", HEALTH_PY], start_period="20s"),
        cpus="0.5",
        memory="256m",
        ports=[(port, port)],
        environment={
            **_ENGINE_ENV,
            "CLAIRE_HEALTH_PORT": port,
            "CLAIRE_WEB_TOKEN": "${CLAIRE_WEB_TOKEN:?set CLAIRE_WEB_TOKEN in compose/.env}",
        },
        volumes=["claire_data:" + DATA_DIR],
        depends_on={
            "cdb_postgres": "service_healthy",
            "cdb_init": "service_completed_successfully",
        },
        monitoring=True,
    )


# The steward's health: its loop touched the file within 90 s (engine.run.stack_steward).
STEWARD_HEALTH_PY: Final = (
    "import os, sys, time; "
    "sys.exit(time.time() - os.path.getmtime('/tmp/claire-steward.alive') > 90)"
)


def _steward() -> Service:
    """The stack run's steward: the operator's commands, backups on the operator's
    clock and a live run's daily reports (engine.run.stack_steward, and
    engine.stack.backups for why the backups have a container of their own)."""
    return Service(
        name="cdb_steward",
        image=ENGINE_IMAGE,
        build=True,
        command=[
            "claire",
            "stack",
            "steward",
            "--run",
            "${CLAIRE_RUN_ID:-stack}",
            "--data-dir",
            DATA_DIR,
        ],
        health=Health(["CMD", "python", "-c", STEWARD_HEALTH_PY], start_period="30s"),
        cpus="0.5",
        memory="512m",
        environment={
            **_ENGINE_ENV,
            "CLAIRE_EXCHANGE": "${CLAIRE_EXCHANGE:-}",
            "BACKUP_SCHEDULE": "${BACKUP_SCHEDULE:-on}",
            "BACKUP_INTERVAL": "${BACKUP_INTERVAL:-24h}",
            "BACKUP_RETENTION_DAYS": "${BACKUP_RETENTION_DAYS:-14}",
        },
        volumes=["claire_data:" + DATA_DIR],
        depends_on={**_BACKING, "cdb_init": "service_completed_successfully"},
        reached=False,
    )


STACK: Final[tuple[Service, ...]] = (
    Service(
        name="cdb_redis",
        image=REDIS_IMAGE,
        command=[
            "redis-server",
            "--port",
            _REDIS,
            "--requirepass",
            "${REDIS_PASSWORD:?set REDIS_PASSWORD in compose/.env}",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ],
        health=Health(
            [
                "CMD-SHELL",
                'redis-cli --no-auth-warning -a "$$REDIS_PASSWORD" -p '
                + _REDIS
                + " ping | grep -q PONG",
            ],
            start_period="10s",
        ),
        cpus="1.0",
        memory="512m",
        ports=[(_REDIS, _REDIS)],
        environment={"REDIS_PASSWORD": "${REDIS_PASSWORD:?set REDIS_PASSWORD in compose/.env}"},
        volumes=["redis_data:/data"],
    ),
    Service(
        name="cdb_postgres",
        image=POSTGRES_IMAGE,
        command=["postgres", "-c", "port=" + _PG],
        health=Health(
            ["CMD-SHELL", "pg_isready -h 127.0.0.1 -p " + _PG + " -U claire -d claire"],
            start_period="30s",
        ),
        cpus="1.0",
        memory="1g",
        ports=[(_PG, _PG)],
        environment={
            "POSTGRES_DB": "claire",
            "POSTGRES_USER": "claire",
            "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in compose/.env}",
        },
        volumes=["postgres_data:/var/lib/postgresql"],
    ),
    Service(
        name="cdb_init",
        image=ENGINE_IMAGE,
        build=True,
        command=[
            "claire",
            "stack",
            "init-run",
            "--run",
            "${CLAIRE_RUN_ID:-stack}",
            "--market-dir",
            MARKET_DIR,
            "--files",
            "${CLAIRE_REPLAY_FILES:-ETH_BTC-5m.csv,LTC_BTC-5m.csv,ADA_BTC-5m.csv,DASH_BTC-5m.csv}",
            "--days",
            "${CLAIRE_REPLAY_DAYS:-7}",
            "--speed",
            "${CLAIRE_REPLAY_SPEED:-max}",
        ],
        health=None,
        cpus="1.0",
        memory="512m",
        environment={**_ENGINE_ENV, **LIVE_ENV},
        volumes=[
            "claire_data:" + DATA_DIR,
            "${CLAIRE_MARKET_DATA:-../../shared/data/market}:" + MARKET_DIR + ":ro",
        ],
        depends_on=dict(_BACKING),
        restart="no",
    ),
    _engine("cdb_db_writer"),
    _engine("cdb_core"),
    _engine("cdb_risk"),
    _engine("cdb_execution"),
    _engine("cdb_portfolio"),
    _engine("cdb_alerts"),
    _engine("cdb_ws"),
    _steward(),
    Service(
        name="cdb_prometheus",
        image=PROMETHEUS_IMAGE,
        command=[
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=15d",
        ],
        health=Health(
            ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:9090/-/ready"], start_period="20s"
        ),
        cpus="0.5",
        memory="512m",
        ports=[("${PROMETHEUS_PORT:-9090}", "9090")],
        volumes=[
            "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
            "prometheus_data:/prometheus",
        ],
        depends_on={name: "service_healthy" for name in ENGINE_SERVICES},
        monitoring=True,
    ),
    Service(
        name="cdb_grafana",
        image=GRAFANA_IMAGE,
        command=None,
        health=Health(
            ["CMD", "wget", "-q", "--spider", "http://127.0.0.1:3000/api/health"],
            start_period="30s",
        ),
        cpus="0.5",
        memory="512m",
        ports=[("${GRAFANA_PORT:-3000}", "3000")],
        environment={
            "GF_SECURITY_ADMIN_USER": "${GRAFANA_ADMIN_USER:-admin}",
            "GF_SECURITY_ADMIN_PASSWORD": (
                "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD in compose/.env}"
            ),
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in compose/.env}",
        },
        volumes=[
            "./grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro",
            "./grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro",
            "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana_data:/var/lib/grafana",
        ],
        depends_on={"cdb_prometheus": "service_healthy", "cdb_postgres": "service_healthy"},
        monitoring=True,
    ),
    _web(),
)

VOLUMES: Final = ("claire_data", "redis_data", "postgres_data", "prometheus_data", "grafana_data")
BY_NAME: Final = {s.name: s for s in STACK}


def container_name(service: str, project: str = PROJECT) -> str:
    """The container of `service` in `project`: the service's own name in the default
    project (`cdb_risk`), the project's name before it in another (`mine_cdb_risk`)."""
    return service if project == PROJECT else f"{project}_{service}"


def volume_name(volume: str, project: str = PROJECT) -> str:
    return f"{project}_{volume}"


def network_name(project: str = PROJECT) -> str:
    return f"{project}_default"


def render_compose() -> dict[str, Any]:
    """The compose file's content (bridge network), as plain data."""
    services: dict[str, Any] = {}
    for s in STACK:
        body: dict[str, Any] = {"container_name": s.name, "image": s.image}
        if s.build:
            body["build"] = {"context": "..", "dockerfile": "compose/Dockerfile"}
        if s.command is not None:
            body["command"] = list(s.command)
        if s.environment:
            body["environment"] = dict(s.environment)
        if s.ports:
            body["ports"] = [f"127.0.0.1:{host}:{inner}" for host, inner in s.ports]
        if s.volumes:
            body["volumes"] = list(s.volumes)
        if s.depends_on:
            body["depends_on"] = {n: {"condition": c} for n, c in s.depends_on.items()}
        if s.health is None:
            body["healthcheck"] = {"disable": True}  # a one-shot: no image health check
        else:
            h = s.health
            body["healthcheck"] = {
                "test": list(h.test),
                "interval": h.interval,
                "timeout": h.timeout,
                "retries": h.retries,
                "start_period": h.start_period,
                "start_interval": h.start_interval,
            }
        body["restart"] = s.restart
        body["deploy"] = {"resources": {"limits": {"cpus": s.cpus, "memory": s.memory}}}
        body["logging"] = {"driver": LOG_DRIVER, "options": dict(LOG_OPTIONS)}
        services[s.name] = body
    return {
        "name": PROJECT,
        "services": services,
        "volumes": {v: {"name": volume_name(v)} for v in VOLUMES},
    }


HEADER: Final = """\
# Claire de Binare as a Docker stack. Generated from engine/stack/spec.py
# (`claire stack compose > compose/docker-compose.yml`); edit the spec, not this file.
# Secrets and ports come from compose/.env (copy compose/.env.example).
"""


def compose_text() -> str:
    import yaml

    body = yaml.safe_dump(render_compose(), sort_keys=False, width=100, default_flow_style=False)
    return HEADER + body


# --- compose variables ---------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(ValueError):
    """A `${NAME:?message}` variable is unset or empty."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Resolve compose variables in `value` from `env`, as `docker compose` does."""

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise MissingVariable(arg or f"{name} is not set")
        return current or ""

    return _VARIABLE.sub(one, value)
