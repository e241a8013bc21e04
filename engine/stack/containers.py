"""The stack's containers through the Docker SDK: build, up, ps, logs, restart, down.

Every Docker failure reaches the caller as a `StackError`: one sentence with the fix.
For other modules (incident bundles, status): `restart_service(name)` restarts one
service's container, `service_logs(name, tail=200)` returns its recent log lines, and
`stack_rows()` the state of every container. Services are named as in the stack
(`cdb_risk`); their containers are those of the project (`CLAIRE_STACK_PROJECT`,
engine.stack.spec), the one of the environment and compose/.env unless one is given.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Healthcheck, LogConfig

from engine.errors import ClaireError
from engine.stack.checks import check_ports, stack_mode
from engine.stack.config import StackConfig, port_free
from engine.stack.spec import (
    BASE_IMAGE,
    BY_NAME,
    ENGINE_IMAGE,
    LABEL_PROJECT,
    LIVE_ENV,
    LOG_DRIVER,
    LOG_OPTIONS,
    PROJECT,
    STACK,
    VOLUMES,
    Service,
    container_name,
    network_name,
    volume_name,
)

LABEL_SERVICE: Final = "com.docker.compose.service"
LABEL_CONFIG: Final = "claire.config-hash"
LABEL_PORTS: Final = "claire.ports"
STOP_TIMEOUT_S: Final = 20

Progress = Callable[[str], None]


class StackError(ClaireError):
    """The Docker engine refused or the stack is not in the state asked for."""


def _quiet(_: str) -> None:
    return None


def connect() -> docker.DockerClient:
    """The Docker engine of DOCKER_HOST (default: the local socket)."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise StackError(
            "no Docker engine is reachable (DOCKER_HOST or /var/run/docker.sock): start Docker "
            f"or set DOCKER_HOST ({_first_line(exc)})."
        ) from None
    return client


def current_project() -> str:
    """The stack's project: CLAIRE_STACK_PROJECT of the environment or compose/.env."""
    return StackConfig.load().project


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _services(config: StackConfig, names: list[str] | None = None) -> list[Service]:
    """The services asked for (all by default) with what they depend on, in start order."""
    wanted = [s.name for s in STACK if config.monitoring or not s.monitoring]
    if names:
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise StackError(
                f"no service {unknown[0]!r} in the stack; choose from {', '.join(BY_NAME)}."
            )
        wanted = []
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.append(name)
                todo.extend(BY_NAME[name].depends_on)
    return [s for s in STACK if s.name in wanted]


# --- build --------------------------------------------------------------------------


def build(config: StackConfig, progress: Progress = _quiet, base_image: str = BASE_IMAGE) -> str:
    """Build the engine image from compose/Dockerfile on `base_image`; returns its id."""
    client = connect()
    progress(f"building {ENGINE_IMAGE} from {config.context} on {base_image}")
    try:
        image, logs = client.images.build(
            path=str(config.context),
            dockerfile="compose/Dockerfile",
            tag=ENGINE_IMAGE,
            rm=True,
            forcerm=True,
            buildargs={"BASE_IMAGE": base_image},
            network_mode="host" if config.network == "host" else None,
        )
    except docker.errors.BuildError as exc:
        tail = [str(c.get("stream", c.get("error", ""))).strip() for c in exc.build_log]
        detail = " | ".join(t for t in tail[-3:] if t)
        raise StackError(_build_failure(detail, base_image)) from None
    except docker.errors.APIError as exc:
        raise StackError(_build_failure(_first_line(exc), base_image)) from None
    for chunk in logs:
        line = str(chunk.get("stream", "") if isinstance(chunk, dict) else "").strip()
        if line.startswith("Step "):
            progress(line)
    return str(image.id)


_OFFLINE_SIGNS: Final = (
    "pull access denied", "not found", "manifest", "registry", "dial tcp", "no such host",
    "i/o timeout", "name resolution", "network is unreachable", "connection refused",
    "failed to establish a new connection", "no matching distribution",
    "could not find a version",
)  # fmt: skip


def _build_failure(detail: str, base_image: str) -> str:
    """The sentence of a failed build: how to build offline when no registry answered."""
    if any(sign in detail.lower() for sign in _OFFLINE_SIGNS):
        return (
            f"building {ENGINE_IMAGE} needs the base image {base_image} and Python packages, "
            "and no registry answered: build offline by loading a base image (`docker load`, "
            "or `claire stack build --base-image IMAGE` for one this engine has) and putting "
            "the wheels in compose/wheels/ (`pip wheel -w compose/wheels .`), as "
            f"docs/services-and-stack.md says under Building offline ({detail[:200]})."
        )
    return f"building {ENGINE_IMAGE} failed: {detail}."


# --- up -----------------------------------------------------------------------------


def up(
    config: StackConfig,
    names: list[str] | None = None,
    timeout_s: float = 180.0,
    progress: Progress = _quiet,
) -> list[dict[str, Any]]:
    """Create or start every service (and what it depends on), each once its
    dependencies are healthy; returns `ps` rows once all are healthy (or done)."""
    services = _services(config, names)
    for service in services:
        container_options(config, service)  # every variable set, every port a port
    stack_mode(config.env)  # the live settings agree, before anything is made
    client = connect()
    project = config.project
    check_ports(config, services, own=lambda s: _running(client, config, s))
    _ensure_volumes(client, project)
    if config.network == "bridge":
        _ensure_network(client, project)
    deadline = time.monotonic() + timeout_s
    for service in services:
        for dependency, condition in service.depends_on.items():
            _wait(client, project, dependency, condition, deadline, progress)
        _start(client, config, service, progress)
    for service in services:
        _wait(client, project, service.name, _ready_condition(service), deadline, progress)
    return stack_rows(client, project)


def _running(client: docker.DockerClient, config: StackConfig, service: Service) -> bool:
    """Whether the service's container runs now: the ports it holds are its own."""
    found = _get(client, container_name(service.name, config.project))
    return found is not None and found.status == "running"


def _ready_condition(service: Service) -> str:
    if service.one_shot:
        return "service_completed_successfully"
    return "service_healthy" if service.health else "service_started"


def _ensure_volumes(client: docker.DockerClient, project: str) -> None:
    for volume in VOLUMES:
        name = volume_name(volume, project)
        try:
            client.volumes.get(name)
        except docker.errors.NotFound:
            client.volumes.create(name, labels={LABEL_PROJECT: project})


def _ensure_network(client: docker.DockerClient, project: str) -> None:
    network = network_name(project)
    if not client.networks.list(names=[network]):
        client.networks.create(network, driver="bridge", labels={LABEL_PROJECT: project})


def container_options(config: StackConfig, service: Service) -> dict[str, Any]:
    """The `containers.create` keyword arguments of a service in this configuration."""
    environment = {k: config.value(v) for k, v in service.environment.items()}
    environment = {k: v for k, v in environment.items() if v or k not in LIVE_ENV}
    if config.network == "host" and "CLAIRE_HTTP_HOST" in environment:
        environment["CLAIRE_HTTP_HOST"] = "127.0.0.1"  # the host's own loopback only
    command = [config.value(c) for c in service.command] if service.command else None
    volumes: dict[str, dict[str, str]] = {}
    for spec in service.volumes:
        parts = config.value(spec).split(":")
        source, target = parts[0], parts[1]
        mode = parts[2] if len(parts) > 2 else "rw"
        if source.startswith((".", "/")):
            source = str((config.compose_dir / source).resolve())
        else:
            source = volume_name(source, config.project)
        volumes[source] = {"bind": target, "mode": mode}
    options: dict[str, Any] = {
        "image": service.image,
        "name": container_name(service.name, config.project),
        "command": command,
        "environment": environment,
        "volumes": volumes,
        "nano_cpus": int(float(service.cpus) * 1e9),
        "mem_limit": service.memory,
        "log_config": LogConfig(type=LOG_DRIVER, config=dict(LOG_OPTIONS)),
        "restart_policy": (
            {"Name": "no"}
            if service.one_shot
            else {"Name": service.restart, "MaximumRetryCount": 0}
        ),
        "labels": {LABEL_PROJECT: config.project, LABEL_SERVICE: service.name, **config.labels},
        "detach": True,
    }
    options["labels"][LABEL_PORTS] = ",".join(str(host) for host, _ in config.ports(service))
    if service.health is None:
        options["healthcheck"] = Healthcheck(test=["NONE"])
    else:
        h = service.health
        check = Healthcheck(
            test=[config.value(t).replace("$$", "$") for t in h.test],
            interval=_ns(config.value(h.interval)),
            timeout=_ns(h.timeout),
            retries=h.retries,
            start_period=_ns(h.start_period),
        )
        check["StartInterval"] = _ns(h.start_interval)  # Docker 25+; older engines ignore it
        options["healthcheck"] = check
    if config.network == "host":
        options["network_mode"] = "host"
        options["extra_hosts"] = {s.name: "127.0.0.1" for s in STACK if s.reached}
    else:
        options["network"] = network_name(config.project)
        options["ports"] = {
            f"{inner}/tcp": ("127.0.0.1", host) for host, inner in config.ports(service)
        }
        if config.project != PROJECT:  # the others reach it by the service's name
            options["networking_config"] = {options["network"]: {"Aliases": [service.name]}}
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    options["labels"][LABEL_CONFIG] = digest.hexdigest()[:16]
    return options


def _ns(duration: str) -> int:
    units = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000}
    for unit in ("ms", "s", "m"):
        if duration.endswith(unit):
            return int(float(duration[: -len(unit)]) * units[unit])
    raise StackError(f"duration {duration!r} has no unit; write it like 10s.")


def _start(
    client: docker.DockerClient, config: StackConfig, service: Service, progress: Progress
) -> None:
    options = container_options(config, service)
    existing = _get(client, options["name"])
    if existing is not None:
        if existing.labels.get(LABEL_CONFIG) == options["labels"][LABEL_CONFIG]:
            state = existing.attrs["State"]
            if existing.status == "running" or (
                service.one_shot and state["ExitCode"] == 0 and existing.status == "exited"
            ):
                return
            progress(f"starting {service.name}")
            _call(existing.start, service)
            return
        progress(f"recreating {service.name} (its configuration changed)")
        existing.remove(force=True)
    if config.network == "host":
        for host, _ in config.ports(service):
            if not port_free(host):
                raise StackError(
                    f"port {host} of {service.name} is busy on this machine: stop what uses "
                    "it, or set its port variable in compose/.env to a free port."
                )
    progress(f"creating {service.name}")
    container = _call(lambda: client.containers.create(**options), service)
    _call(container.start, service)


def _call(action: Callable[[], Any], service: Service) -> Any:
    try:
        return action()
    except docker.errors.ImageNotFound:
        fix = (
            "run `claire stack build`"
            if service.build
            else f"run `docker pull {service.image}` (or load it with `docker load`)"
        )
        raise StackError(f"image {service.image} of {service.name} is missing: {fix}.") from None
    except docker.errors.APIError as exc:
        text = str(exc)
        if "address already in use" in text or "port is already allocated" in text:
            raise StackError(
                f"a port of {service.name} is busy on this machine: stop what uses it, or set "
                "its port variable in compose/.env to a free port."
            ) from None
        raise StackError(f"Docker refused {service.name}: {_first_line(exc)}.") from None


def _wait(
    client: docker.DockerClient,
    project: str,
    name: str,
    condition: str,
    deadline: float,
    progress: Progress,
) -> None:
    said = ""
    while True:
        container = _get(client, container_name(name, project))
        if container is None:
            raise StackError(f"{name} does not exist; run `claire stack up`.")
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        if state.get("Restarting") and int(container.attrs.get("RestartCount", 0)) >= 3:
            raise StackError(
                f"{name} keeps exiting (code {state['ExitCode']}): {_last_log(container)}; "
                f"see `claire stack logs {name}`."
            )
        if state.get("Restarting"):
            health = "restarting"
        elif condition == "service_completed_successfully":
            if state["Status"] == "exited":
                if state["ExitCode"] == 0:
                    return
                raise StackError(
                    f"{name} exited with code {state['ExitCode']}: {_last_log(container)}; "
                    f"see `claire stack logs {name}`."
                )
        elif condition == "service_healthy":
            if health == "healthy":
                return
            if health == "unhealthy":
                raise StackError(
                    f"{name} is unhealthy: {_last_health(state)}; see `claire stack logs {name}`."
                )
        elif state["Status"] == "running":
            return
        now = f"waiting for {name} ({health or state['Status']})"
        if now != said:
            progress(now)
            said = now
        if time.monotonic() > deadline:
            raise StackError(not_ready(name, condition, state, _last_log(container)))
        time.sleep(0.5)


def not_ready(name: str, condition: str, state: dict[str, Any], last_log: str) -> str:
    """Why `up` gave up waiting for a container: its state, its last health check and
    its last log line, with what to do."""
    health = (state.get("Health") or {}).get("Status")
    seen = "restarting" if state.get("Restarting") else str(health or state.get("Status"))
    if health:
        seen += f"; last health check: {_last_health(state)}"
    wanted = condition.removeprefix("service_").replace("_", " ")
    return (
        f"{name} was not {wanted} in time ({seen}; last log line: {last_log}): see "
        f"`claire stack logs {name}`, or give `--timeout` more seconds."
    )


def _last_health(state: dict[str, Any]) -> str:
    entries = (state.get("Health") or {}).get("Log") or []
    if not entries:
        return "no health check result yet"
    last = entries[-1]
    output = str(last.get("Output", "")).strip().splitlines()
    return f"exit {last.get('ExitCode')}, {output[-1][:200] if output else 'no output'}"


def _last_log(container: Container) -> str:
    lines = container.logs(tail=20).decode(errors="replace").strip().splitlines()
    lines = [line for line in lines if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _get(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


# --- ps, logs, restart, down ---------------------------------------------------------


@dataclass(frozen=True)
class Row:
    service: str
    state: str
    health: str
    restarts: int
    uptime_s: float | None
    ports: str
    exit_code: int | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def stack_rows(
    client: docker.DockerClient | None = None, project: str | None = None
) -> list[dict[str, Any]]:
    """One row per container of the stack that exists, in the stack's order."""
    client = client or connect()
    project = project or current_project()
    found = {
        c.name: c
        for c in client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project}"})
    }
    now = datetime.now(UTC)
    rows = []
    for service in STACK:
        container = found.get(container_name(service.name, project))
        if container is None:
            continue
        state = container.attrs["State"]
        uptime = None
        if state["Status"] == "running":
            started = datetime.fromisoformat(state["StartedAt"][:26].rstrip("Z") + "+00:00")
            uptime = max(0.0, (now - started).total_seconds())
        bindings = container.attrs["HostConfig"].get("PortBindings") or {}
        ports = ", ".join(
            f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{inner}"  # noqa: S104 - shown only
            for inner, items in sorted(bindings.items())
            for b in items or []
        )
        if not ports and container.attrs["HostConfig"].get("NetworkMode") == "host":
            ports = "host " + (container.labels.get(LABEL_PORTS) or "-")
        rows.append(
            Row(
                service=service.name,
                state=state["Status"],
                health=(state.get("Health") or {}).get("Status", "-"),
                restarts=int(container.attrs.get("RestartCount", 0)),
                uptime_s=uptime,
                ports=ports,
                exit_code=None if state["Status"] == "running" else state.get("ExitCode"),
            ).as_json()
        )
    return rows


def service_logs(name: str, tail: int = 200, project: str | None = None) -> list[str]:
    """The last `tail` log lines of a service's container, with Docker's timestamps."""
    container = _require(connect(), name, project)
    text = container.logs(tail=tail, timestamps=True).decode(errors="replace")
    return text.splitlines()


def follow_logs(name: str, tail: int = 100, project: str | None = None) -> Iterator[str]:
    """A service's log lines as they come, until the container stops."""
    container = _require(connect(), name, project)
    buffer = ""
    for chunk in container.logs(stream=True, follow=True, tail=tail, timestamps=True):
        buffer += chunk.decode(errors="replace")
        *lines, buffer = buffer.split("\n")
        yield from lines
    if buffer:
        yield buffer


def restart_service(name: str, timeout_s: int = STOP_TIMEOUT_S, project: str | None = None) -> None:
    """Restart one service's container (SIGTERM, then SIGKILL after `timeout_s`)."""
    container = _require(connect(), name, project)
    try:
        container.restart(timeout=timeout_s)
    except docker.errors.APIError as exc:
        raise StackError(f"Docker did not restart {name}: {_first_line(exc)}.") from None


def service_container(name: str, project: str | None = None) -> Container:
    """A service's container; a `StackError` naming `claire stack up` when it has none."""
    return _require(connect(), name, project)


def _require(client: docker.DockerClient, name: str, project: str | None) -> Container:
    if name not in BY_NAME:
        raise StackError(f"no service {name!r} in the stack; choose from {', '.join(BY_NAME)}.")
    container = _get(client, container_name(name, project or current_project()))
    if container is None:
        raise StackError(f"{name} has no container; run `claire stack up` first.")
    return container


def down(
    remove_volumes: bool = False, progress: Progress = _quiet, project: str | None = None
) -> list[str]:
    """Stop and remove every container of the stack (volumes kept unless asked)."""
    client = connect()
    project = project or current_project()
    removed = []
    for service in reversed(STACK):
        container = _get(client, container_name(service.name, project))
        if container is None:
            continue
        progress(f"stopping {service.name}")
        if container.status == "running":
            container.stop(timeout=STOP_TIMEOUT_S)
        container.remove()
        removed.append(service.name)
    for network in client.networks.list(names=[network_name(project)]):
        network.remove()
    if remove_volumes:
        for volume in VOLUMES:
            try:
                client.volumes.get(volume_name(volume, project)).remove()
                progress(f"removed volume {volume_name(volume, project)}")
            except docker.errors.NotFound:
                continue
    return removed


def stack_exists(project: str | None = None) -> bool:
    """Whether a Docker engine answers (within a few seconds) and holds any container of
    the stack; False at once when no Docker engine is configured (engine.stack.target)."""
    from engine.stack.target import stack_present

    try:
        chosen = project or current_project()
    except ClaireError:
        return False
    return stack_present(chosen)
