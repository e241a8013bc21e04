"""Which database a runbook command uses: the URL, the stack, or the data folder."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from engine.config import Settings
from engine.errors import ConfigError
from engine.stack.config import StackConfig
from engine.stack.target import (
    NoStackError,
    docker_configured,
    published_postgres_answers,
    resolve_target,
    stack_present,
)

PASSWORD = "StackPw0rd-never-shown"


@pytest.fixture
def compose(tmp_path: Path) -> Path:
    folder = tmp_path / "compose"
    folder.mkdir()
    (folder / ".env").write_text(
        f"POSTGRES_PASSWORD={PASSWORD}\nREDIS_PASSWORD=redis-{PASSWORD}\nPOSTGRES_PORT=15432\n"
        "REDIS_PORT=16379\nCLAIRE_STACK_PROJECT=mine\n"
    )
    return folder


def _there(project: str) -> bool:
    return project == "mine"


def _absent(project: str) -> bool:
    return False


def _quiet(config: StackConfig) -> bool:
    return False


def test_the_stack_gives_its_published_urls_and_says_so_without_the_password(
    compose: Path,
) -> None:
    target = resolve_target(Settings(), stack=True, compose_dir=compose, present=_there)
    assert target.kind == "stack" and target.project == "mine"
    url = target.settings.claire_postgres_url
    redis = target.settings.claire_redis_url
    assert url is not None and redis is not None
    assert url.get_secret_value() == f"postgresql://claire:{PASSWORD}@127.0.0.1:15432/claire"
    assert redis.get_secret_value() == f"redis://:redis-{PASSWORD}@127.0.0.1:16379/0"
    assert PASSWORD not in target.describe() + str(target.as_json())
    assert "127.0.0.1:15432/claire" in target.describe()
    assert "mine" in target.describe()


def test_an_explicit_url_wins_over_the_stack(compose: Path) -> None:
    settings = Settings(claire_postgres_url="postgresql://u:secretpw@db.example:5432/claire")
    target = resolve_target(settings, stack=True, compose_dir=compose, present=_there)
    assert target.kind == "url" and target.settings is settings
    assert "secretpw" not in target.describe()


def test_a_stack_that_exists_is_used_without_asking(compose: Path) -> None:
    target = resolve_target(Settings(claire_home=None), compose_dir=compose, present=_there)
    assert target.kind == "stack"


def test_a_named_data_folder_wins_over_a_stack_that_exists(compose: Path, tmp_path: Path) -> None:
    by_option = resolve_target(Settings(), data_dir=tmp_path, compose_dir=compose, present=_there)
    assert by_option.kind == "folder" and by_option.settings.claire_postgres_url is None
    by_home = resolve_target(Settings(claire_home=tmp_path), compose_dir=compose, present=_there)
    assert by_home.kind == "folder"
    asked = resolve_target(
        Settings(claire_home=tmp_path), stack=True, compose_dir=compose, present=_there
    )
    assert asked.kind == "stack"


def test_no_stack_means_the_data_folder(compose: Path) -> None:
    unnamed = Settings(claire_home=None)
    assert resolve_target(unnamed, compose_dir=compose, present=_absent).kind == "folder"
    assert (
        resolve_target(unnamed, stack=False, compose_dir=compose, present=_there).kind == "folder"
    )


def test_asking_for_a_stack_that_is_not_there_names_the_fix(compose: Path) -> None:
    with pytest.raises(NoStackError) as caught:
        resolve_target(Settings(), stack=True, compose_dir=compose, present=_absent, answers=_quiet)
    message = str(caught.value)
    assert "`claire stack up`" in message and "15432" in message and "mine" in message
    assert len(message.splitlines()) == 1


def test_a_published_database_that_answers_is_a_stack_without_docker(compose: Path) -> None:
    target = resolve_target(
        Settings(), stack=True, compose_dir=compose, present=_absent, answers=lambda c: True
    )
    assert target.kind == "stack"


def test_a_stack_without_its_password_names_the_env_file(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"compose/\.env"):
        resolve_target(Settings(), stack=True, compose_dir=folder, present=lambda p: True)
    # Not asked for: a stack this machine has no passwords for is not used.
    found = resolve_target(Settings(claire_home=None), compose_dir=folder, present=lambda p: True)
    assert found.kind == "folder"


def test_the_published_port_check_is_a_real_connection(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = StackConfig.load(compose_dir=tmp_path, environ={"POSTGRES_PORT": str(port)})
        assert published_postgres_answers(config)
    assert not published_postgres_answers(config)


def test_without_docker_there_is_no_stack_and_no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr("engine.stack.target.DOCKER_SOCKET", Path("/nonexistent/docker.sock"))
    assert not docker_configured()
    started = time.monotonic()
    assert not stack_present("claire")
    assert time.monotonic() - started < 0.5


def test_a_docker_host_that_does_not_answer_is_no_stack_within_the_time_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert not stack_present("claire", timeout_s=1)
        assert time.monotonic() - started < 5
