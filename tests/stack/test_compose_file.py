"""The compose file: generated from the stack's description, valid, and careful."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.errors import ConfigError
from engine.stack.config import StackConfig
from engine.stack.containers import LABEL_CONFIG, LABEL_PROJECT, container_options
from engine.stack.spec import (
    BY_NAME,
    ENGINE_SERVICES,
    STACK,
    MissingVariable,
    compose_text,
    interpolate,
    render_compose,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose" / "docker-compose.yml"
MONITORING_NAMES = {
    "cdb_redis", "cdb_postgres", "cdb_db_writer", "cdb_ws", "cdb_core", "cdb_risk",
    "cdb_execution", "cdb_portfolio", "cdb_prometheus", "cdb_grafana",
}  # fmt: skip
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "REDIS_PASSWORD": "redis-secret",
           "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
           "CLAIRE_WEB_TOKEN": "web-token-for-the-compose-test"}  # fmt: skip


def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_checked_in_compose_file_is_the_one_the_stack_description_renders() -> None:
    assert COMPOSE.read_text() == compose_text(), (
        "compose/docker-compose.yml is stale: claire stack compose > compose/docker-compose.yml"
    )
    assert compose_file() == render_compose()


def test_the_compose_file_passes_the_compose_spec_schema() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose_file(), schema)
    broken = compose_file()
    broken["services"]["cdb_risk"]["restart_policy"] = "always"  # not a compose key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker command line here")
def test_docker_compose_config_accepts_the_file_when_the_plugin_is_there(tmp_path: Path) -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed; the schema test covers the file")
    env = {**SECRETS, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
                            capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_stack_has_the_containers_the_monitoring_expects() -> None:
    services = compose_file()["services"]
    assert set(services) >= MONITORING_NAMES
    assert {name: body["container_name"] for name, body in services.items()} == {
        name: name for name in services
    }
    ports = {ENGINE_SERVICES[n][0]: ENGINE_SERVICES[n][2] for n in ENGINE_SERVICES}
    assert ports == {"feed": 8000, "signal": 8001, "risk": 8002, "execution": 8003,
                     "portfolio": 8004, "writer": 8005, "alerts": 8006}  # fmt: skip
    pg = services["cdb_postgres"]["environment"]
    assert pg["POSTGRES_DB"] == "claire" and pg["POSTGRES_USER"] == "claire"
    assert pg["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_every_service_has_limits_a_health_check_log_rotation_and_a_restart_policy() -> None:
    for name, body in compose_file()["services"].items():
        limits = body["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[mg]", limits["memory"]), name
        assert body["logging"] == {
            "driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}
        }, name  # fmt: skip
        if name == "cdb_init":  # one-shot: records the run, then exits
            assert body["restart"] == "no" and body["healthcheck"] == {"disable": True}
            continue
        assert body["restart"] == "unless-stopped", name
        health = body["healthcheck"]
        assert health["test"][0] in ("CMD", "CMD-SHELL") and health["start_period"], name
        for dependency, rule in body.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency == "cdb_init" else (
                "service_healthy")  # fmt: skip
            assert rule == {"condition": wanted}, (name, dependency)


def test_ports_are_published_on_127_0_0_1_only() -> None:
    published = 0
    for name, body in compose_file()["services"].items():
        for port in body.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
            published += 1
        assert body.get("network_mode") is None, name
    assert published == len([s for s in STACK if s.ports])


def test_no_secret_is_written_in_the_file_and_every_variable_is_in_the_example() -> None:
    text = COMPOSE.read_text()
    for secret in (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "CLAIRE_WEB_TOKEN",
    ):
        assert re.search(rf"\${{{secret}:\?", text), secret  # required, never defaulted
    example = (REPO / "compose" / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= listed, used - listed
    assert "CLAIRE_STACK_NETWORK" in listed
    assert not re.search(r"^(POSTGRES|REDIS|GRAFANA_ADMIN)_PASSWORD=.+", example, re.M)
    assert not re.search(r"^CLAIRE_WEB_TOKEN=.+", example, re.M)
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in ignored


def test_variables_resolve_as_compose_resolves_them() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("${A}-${B:-x}-${EMPTY:-d}-${EMPTY-d}-$$A-$A", env) == "1-x-d--$A-1"
    with pytest.raises(MissingVariable, match="set B"):
        interpolate("${B:?set B}", env)
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?}", env)


def test_a_missing_secret_is_one_sentence_naming_the_env_file(tmp_path: Path) -> None:
    config = StackConfig.load(compose_dir=tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"REDIS_PASSWORD in compose/.env.*\.env\.example"):
        container_options(config, BY_NAME["cdb_redis"])
    with pytest.raises(ConfigError, match=r"bridge .* or host"):
        StackConfig.load(compose_dir=tmp_path, environ={"CLAIRE_STACK_NETWORK": "overlay"})


def test_the_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("REDIS_PASSWORD=from-file\nREDIS_PORT=7000\n")
    config = StackConfig.load(compose_dir=tmp_path, environ={"REDIS_PORT": "7001"})
    assert config.redis_url() == "redis://:from-file@127.0.0.1:7001/0"


def test_the_host_network_maps_every_container_name_to_the_loopback(tmp_path: Path) -> None:
    env = {**SECRETS, "CLAIRE_RISK_PORT": "18002", "CLAIRE_STACK_NETWORK": "host"}
    host = StackConfig.load(compose_dir=tmp_path, environ=env)
    options = container_options(host, BY_NAME["cdb_risk"])
    assert options["network_mode"] == "host" and "ports" not in options
    assert options["extra_hosts"]["cdb_postgres"] == "127.0.0.1"
    assert options["command"][-2:] == ["--port", "18002"]
    assert options["environment"]["CLAIRE_HEALTH_PORT"] == "18002"
    assert "@cdb_redis:6379/0" in options["environment"]["CLAIRE_REDIS_URL"]
    bridge = StackConfig.load(compose_dir=tmp_path, environ=SECRETS)
    options = container_options(bridge, BY_NAME["cdb_risk"])
    assert options["ports"] == {"8002/tcp": ("127.0.0.1", 8002)}
    assert options["healthcheck"]["StartPeriod"] == 30 * 10**9
    assert options["healthcheck"]["Interval"] == 10 * 10**9
    assert options["log_config"]["Config"] == {"max-size": "10m", "max-file": "3"}
    assert options["restart_policy"]["Name"] == "unless-stopped"


def test_the_default_project_keeps_the_names_labels_and_configuration_of_today(
    tmp_path: Path,
) -> None:
    env = {"POSTGRES_PASSWORD": "p", "REDIS_PASSWORD": "r", "GRAFANA_ADMIN_PASSWORD": "g",
           "CLAIRE_WEB_TOKEN": "t"}  # fmt: skip
    # The configuration hashes of containers made before the project setting existed:
    # `claire stack up` does not recreate an existing user's containers.
    before = {
        ("bridge", "cdb_redis"): "b519c5c2cd51649c",
        ("bridge", "cdb_risk"): "0cd2aca30bb1865e",
        ("bridge", "cdb_init"): "6888c588949bf20c",
        ("host", "cdb_redis"): "d564a47df95b0506",
        ("host", "cdb_risk"): "19ab7d5f94d1c0c5",
        ("host", "cdb_init"): "6468344823e5d5f7",
    }
    for (network, name), digest in before.items():
        environ = {**env, "CLAIRE_STACK_NETWORK": network}
        config = StackConfig.load(compose_dir=Path("/nonexistent"), environ=environ)
        assert config.project == "claire"
        options = container_options(config, BY_NAME[name])
        assert options["name"] == name and options["labels"][LABEL_PROJECT] == "claire"
        assert options["labels"][LABEL_CONFIG] == digest, (network, name)
        assert "networking_config" not in options
    compose = render_compose()
    assert compose["name"] == "claire"
    assert compose["volumes"]["postgres_data"] == {"name": "claire_postgres_data"}


def test_another_project_has_its_own_containers_volumes_network_and_labels(
    tmp_path: Path,
) -> None:
    environ = {**SECRETS, "CLAIRE_STACK_PROJECT": "mine"}
    config = StackConfig.load(compose_dir=tmp_path, environ=environ)
    options = container_options(config, BY_NAME["cdb_risk"])
    assert options["name"] == "mine_cdb_risk"
    assert options["labels"][LABEL_PROJECT] == "mine"
    assert options["labels"]["com.docker.compose.service"] == "cdb_risk"
    assert options["network"] == "mine_default"
    # The others still reach it, and it them, by the services' names.
    assert options["networking_config"] == {"mine_default": {"Aliases": ["cdb_risk"]}}
    assert "@cdb_postgres:5432/claire" in options["environment"]["CLAIRE_POSTGRES_URL"]
    volumes = container_options(config, BY_NAME["cdb_postgres"])["volumes"]
    assert set(volumes) == {"mine_postgres_data"}
    (tmp_path / ".env").write_text("CLAIRE_STACK_PROJECT=from-file\n")
    assert StackConfig.load(compose_dir=tmp_path, environ={}).project == "from-file"


@pytest.mark.parametrize("name", ["Mine", "-mine", "mi ne", "m\u00efne", "m" * 64])
def test_a_bad_project_name_is_one_sentence_naming_the_variable(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        StackConfig.load(compose_dir=tmp_path, environ={"CLAIRE_STACK_PROJECT": name})
    message = str(refused.value)
    assert message.startswith("CLAIRE_STACK_PROJECT is ") and "lower-case letters" in message
    assert "\n" not in message
