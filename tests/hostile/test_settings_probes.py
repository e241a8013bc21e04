"""Hostile settings: every field of the settings model gets bad values, and misspelled names.

Each probe asserts the one sentence the operator reads and, through the command
line, the exit code, and that no run was recorded.
"""

from __future__ import annotations

import typing
from decimal import Decimal
from pathlib import Path

import annotated_types
import pytest

from engine.config import FRACTION_FIELDS, RATE_FIELDS, Settings, load_settings
from engine.errors import ConfigError
from tests.cli.support import ETH, invoke, one_line

BAD_NUMBERS = ["abc", "NaN", "inf", "1e400", "-1", "\uff15", "1_0", ""]


def _kind(name: str) -> type | None:
    annotation = Settings.model_fields[name].annotation
    kinds = {annotation, *typing.get_args(annotation)} - {type(None)}
    if bool in kinds:
        return None
    if int in kinds:
        return int
    if kinds & {Decimal, float}:
        return Decimal
    return None


NUMERIC = [name for name in Settings.model_fields if _kind(name) is not None]


def _allows(name: str, value: Decimal) -> bool:
    """Whether `value` lies inside the field's range (then it is no probe)."""
    if name in FRACTION_FIELDS:
        return Decimal(0) < value < Decimal(1)
    if name in RATE_FIELDS:
        return Decimal(0) <= value < Decimal("0.1")
    for bound in Settings.model_fields[name].metadata:
        if isinstance(bound, annotated_types.Ge) and not value >= Decimal(str(bound.ge)):
            return False
        if isinstance(bound, annotated_types.Gt) and not value > Decimal(str(bound.gt)):
            return False
        if isinstance(bound, annotated_types.Le) and not value <= Decimal(str(bound.le)):
            return False
        if isinstance(bound, annotated_types.Lt) and not value < Decimal(str(bound.lt)):
            return False
    return True


NUMBER_PROBES = [
    (name, value)
    for name in NUMERIC
    for value in BAD_NUMBERS
    if not (value == "-1" and _allows(name, Decimal(-1)))
]

OTHER_PROBES = [
    ("circuit_breaker_action", "abc"),
    ("circuit_breaker_action", ""),
    ("sizing_mode", "abc"),
    ("claire_log_level", "loud"),
    ("backup_schedule", "hourly"),
    ("claire_auto_reports", "perhaps"),
    ("claire_auto_reports", ""),
    ("leverage_by_symbol", "abc"),
    ("incident_on_alert", "abc"),
    ("claire_home", ""),
    ("backup_dir", " "),
    ("claire_http_host", "abc"),
    ("claire_http_host", "10.255.255.1"),
    *[
        ("claire_http_port", value)
        for value in ["abc", "-1", "8123x", "NaN", "1e4", "99999", "0", "", "\uff18000", "8_000"]
    ],
]


def _refused(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    return str(refused.value)


@pytest.mark.parametrize(("name", "value"), NUMBER_PROBES + OTHER_PROBES)
def test_a_bad_value_of_every_setting_is_one_sentence_naming_it(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = _refused(name, value, monkeypatch)
    assert "\n" not in message
    assert message.startswith(f"{name.upper()}=") and " is " in message, message
    assert message.endswith("fix it in the environment or .env."), message


@pytest.mark.parametrize("name", NUMERIC)
def test_every_number_refuses_non_ascii_digits_and_underscores(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in ("\uff15", "1_0", "\u0661"):  # full-width 5, 1_0, Arabic-Indic one
        message = _refused(name, value, monkeypatch)
        assert message.startswith(f"{name.upper()}={value} is invalid: must be a "), message
        assert "with the digits 0-9" in message


def _typo(name: str) -> str:
    """The name with two adjacent letters in its middle swapped (a typing slip)."""
    upper = name.upper()
    for i in range(len(upper) // 2, len(upper) - 1):
        if upper[i] != upper[i + 1] and "_" not in upper[i : i + 2]:
            return upper[:i] + upper[i + 1] + upper[i] + upper[i + 2 :]
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_a_misspelled_setting_names_the_right_one(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = _typo(name)
    monkeypatch.setenv(typo, "1")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        f"unknown setting {typo} in the environment; did you mean {name.upper()}? "
        "Fix the name, or remove it."
    )


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("MAX_POSITON_PCT", "MAX_POSITION_PCT"),
        ("MAX-POSITION-PCT", "MAX_POSITION_PCT"),
        ("max-open-positions", "MAX_OPEN_POSITIONS"),
        ("INITAL_CAPITAL", "INITIAL_CAPITAL"),
        ("CLAIRE_HTTP_PROT", "CLAIRE_HTTP_PORT"),
        ("CLAIRE_LOG_LEVLE", "CLAIRE_LOG_LEVEL"),
    ],
)
def test_near_misses_in_a_dotenv_file_are_refused_too(typed: str, meant: str) -> None:
    Path(".env").write_text(f"{typed}=0.2\n")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        f"unknown setting {typed} in .env; did you mean {meant}? Fix the name, or remove it."
    )


def test_an_unknown_claire_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIRE_FAVOURITE_COLOUR", "blue")
    with pytest.raises(ConfigError, match=r"^unknown setting CLAIRE_FAVOURITE_COLOUR in the "):
        load_settings()


@pytest.mark.parametrize(
    "name",
    ["PATH", "HOME", "PYTHONPATH", "PYTHONHASHSEED", "CI", "LANG", "TERM", "HOSTNAME", "TZ",
     "GITHUB_TOKEN", "DOCKER_HOST", "VIRTUAL_ENV", "PGPASSWORD", "DATABASE_URL", "LOG_LEVEL",
     "HTTP_PROXY", "NO_COLOR", "COLUMNS", "MAX_WORKERS", "DEBUG", "STRATEGIES"],
)  # fmt: skip
def test_ordinary_variables_are_left_alone(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "something")
    Path(".env").write_text(f"{name}=something\n")
    assert load_settings().max_open_positions == 3


def test_the_http_port_is_read_from_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIRE_HTTP_PORT")
    Path(".env").write_text("CLAIRE_HTTP_PORT=8123\n")
    assert load_settings().http_port() == 8123
    Path(".env").write_text("CLAIRE_HTTP_PORT=abc\n")
    with pytest.raises(ConfigError, match=r"^CLAIRE_HTTP_PORT=abc is invalid: must be a port"):
        load_settings()


# --- through the command line: one line, exit code 1, no run recorded --------------------

BASE = ["papertest", "start", "--replay", ETH, "--days", "1", "--speed", "max", "--capital", "10"]

CLI_PROBES = [
    ("MAX_POSITON_PCT", "0.2", "unknown setting MAX_POSITON_PCT in the environment; did you "
     "mean MAX_POSITION_PCT?"),
    ("MAX-POSITION-PCT", "0.2", "unknown setting MAX-POSITION-PCT in the environment; did you "
     "mean MAX_POSITION_PCT?"),
    *[("CLAIRE_HTTP_PORT", v, f"CLAIRE_HTTP_PORT={v} is invalid: must be a port number")
      for v in ("abc", "-1", "8123x", "NaN", "1e4", "99999")],
    ("CLAIRE_HTTP_HOST", "10.255.255.1", "CLAIRE_HTTP_HOST=10.255.255.1 is invalid: no address "
     "of this machine"),
    ("MAX_POSITION_PCT", "\uff10.5", "MAX_POSITION_PCT=\uff10.5 is invalid: must be a plain "
     "number"),
    *[(name.upper(), "abc", f"{name.upper()}=abc is invalid") for name in NUMERIC
      if name != "initial_capital"],  # --capital in BASE overrides it: see below
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("name", "value", "says"), CLI_PROBES)
def test_the_command_line_says_one_sentence_and_records_nothing(
    name: str, value: str, says: str, claire_home: Path
) -> None:
    result = invoke(*BASE, env={name: value})
    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert line.startswith("error: "), line
    assert says in line, line
    assert not (claire_home / "postgres").exists()


def test_redis_settings_are_read_from_dotenv(tmp_path: Path) -> None:
    from engine.runtime.redis import EmbeddedRedis, ExternalRedis, redis_service

    Path(".env").write_text("CLAIRE_REDIS_APPENDFSYNC=always\n")
    embedded = redis_service(tmp_path)
    assert isinstance(embedded, EmbeddedRedis) and embedded.appendfsync == "always"
    Path(".env").write_text("CLAIRE_REDIS_URL=redis://127.0.0.1:6390/0\n")
    assert isinstance(redis_service(tmp_path), ExternalRedis)
    Path(".env").write_text("CLAIRE_REDIS_APPENDFSYNC=sometimes\n")
    with pytest.raises(ConfigError, match=r"^CLAIRE_REDIS_APPENDFSYNC=sometimes is invalid"):
        redis_service(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["abc", "1_0", "\uff15", "NaN", "1e400"])
def test_a_bad_initial_capital_without_the_capital_option_is_refused(
    value: str, claire_home: Path
) -> None:
    args = ["papertest", "start", "--replay", ETH, "--days", "1", "--speed", "max"]
    result = invoke(*args, env={"INITIAL_CAPITAL": value})
    assert result.exit_code == 1, result.output
    assert one_line(result.output).startswith(f"error: INITIAL_CAPITAL={value} is "), result.output
    assert not (claire_home / "postgres").exists()
