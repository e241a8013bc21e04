from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import annotated_types
import pytest

from engine.config import FRACTION_FIELDS, RATE_FIELDS, Settings, load_settings
from engine.errors import ConfigError
from engine.runtime import default_data_dir


def test_defaults_follow_the_design() -> None:
    s = load_settings()
    assert s.initial_capital == Decimal("100000")
    assert s.max_position_pct == Decimal("0.10")
    assert s.max_total_exposure_pct == Decimal("0.30")
    assert s.max_daily_drawdown_pct == Decimal("0.05")
    assert s.circuit_breaker_threshold_pct == Decimal("0.10")
    assert s.max_open_positions == 3
    assert s.stale_data_seconds == 30
    assert s.max_orders_per_minute == 30
    assert s.taker_fee_rate == Decimal("0.0005") and s.maker_fee_rate == 0


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_POSITION_PCT", "0.2")
    monkeypatch.setenv("max_open_positions", "5")
    s = load_settings()
    assert s.max_position_pct == Decimal("0.2") and s.max_open_positions == 5


def test_dotenv_file_is_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(".env", "w") as handle:
        handle.write("INITIAL_CAPITAL=25\n")
    assert load_settings().initial_capital == Decimal(25)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_POSITION_PCT", "1.5"),
        ("MAX_TOTAL_EXPOSURE_PCT", "0"),
        ("MAX_DAILY_DRAWDOWN_PCT", "-0.1"),
        ("CIRCUIT_BREAKER_THRESHOLD_PCT", "1"),
        ("MAX_POSITION_PCT", "NaN"),
        ("PARTICIPATION_CAP_PCT", "Infinity"),
        ("INITIAL_CAPITAL", "-5"),
        ("MAX_OPEN_POSITIONS", "0"),
        ("TAKER_FEE_RATE", "0.5"),
    ],
)
def test_out_of_range_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"{name}=")
    assert "\n" not in str(refused.value)


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEXC_API_SECRET", "s3cr3t-value")
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", "postgresql://u:hunter2@db/claire")
    s = load_settings()
    assert "s3cr3t" not in repr(s) and "hunter2" not in repr(s)
    assert "s3cr3t" not in str(s.redacted()) and "hunter2" not in str(s.redacted())
    assert s.mexc_api_secret is not None
    assert s.mexc_api_secret.get_secret_value() == "s3cr3t-value"


def test_a_bad_url_error_does_not_echo_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", "")
    monkeypatch.setenv("STALE_DATA_SECONDS", "soon")
    with pytest.raises(ConfigError, match="STALE_DATA_SECONDS=soon"):
        load_settings()


# --- bounds: every number a setting takes has a range, tested at both ends ----------

NUMERIC = [
    name
    for name, field in Settings.model_fields.items()
    if field.annotation in (int, float, Decimal)
]
# Bounds set by validators rather than Field constraints: (low, low included, high, high included).
VALIDATED = {
    **{name: (Decimal(0), False, Decimal(1), False) for name in FRACTION_FIELDS},
    **{name: (Decimal(0), True, Decimal("0.1"), False) for name in RATE_FIELDS},
}


def bounds(name: str) -> tuple[Decimal, bool, Decimal, bool]:
    if name in VALIDATED:
        return VALIDATED[name]
    low = high = None
    low_in = high_in = True
    for bound in Settings.model_fields[name].metadata:
        if isinstance(bound, annotated_types.Ge):
            low = Decimal(str(bound.ge))
        elif isinstance(bound, annotated_types.Gt):
            low, low_in = Decimal(str(bound.gt)), False
        elif isinstance(bound, annotated_types.Le):
            high = Decimal(str(bound.le))
        elif isinstance(bound, annotated_types.Lt):
            high, high_in = Decimal(str(bound.lt)), False
    assert low is not None and high is not None, f"{name.upper()} has no range"
    return low, low_in, high, high_in


def test_every_numeric_setting_has_a_lower_and_an_upper_bound() -> None:
    assert len(NUMERIC) >= 20
    for name in NUMERIC:
        low, _, high, _ = bounds(name)
        assert low < high, name
        # The database stores whole-number settings in 32-bit columns.
        if Settings.model_fields[name].annotation is int:
            assert high < 2**31, name


def edges(name: str) -> tuple[list[str], list[str]]:
    """Values just inside the range (accepted) and just outside it (refused)."""
    low, low_in, high, high_in = bounds(name)
    whole = Settings.model_fields[name].annotation is int
    step = (
        Decimal(1)
        if whole
        else min(Decimal("0.000001"), (high - low) / 1000) * max(Decimal(1), low)
    )
    inside = [low if low_in else low + step, high if high_in else high - step]
    outside = [low - step if low_in else low, high + step if high_in else high]
    if not whole:
        outside.append(high * 10 + 1)  # well beyond, like 1e20 for LOT_SIZE
    return [str(v) for v in inside], [str(v) for v in outside]


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_settings_are_accepted_at_their_bounds_and_refused_beyond(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    inside, outside = edges(name)
    for value in inside:
        monkeypatch.setenv(name.upper(), value)
        assert Decimal(str(getattr(load_settings(), name))) == Decimal(value), value
    for value in outside:
        monkeypatch.setenv(name.upper(), value)
        with pytest.raises(ConfigError) as refused:
            load_settings()
        message = str(refused.value)
        assert message.startswith(f"{name.upper()}={value} is "), message
        assert "\n" not in message and "fix it in the environment or .env" in message


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ORDER_TTL_SECONDS", "3000000000", "must be from 1 to 2592000"),
        ("LOT_SIZE", "1e20", "must be from 0.000000000001 to 1000000"),
        ("INITIAL_CAPITAL", "1e999999", "must be from 0.00000001 to 1000000000000"),
        ("INITIAL_CAPITAL", "NaN", "is invalid"),
        ("VOLATILITY_LOOKBACK_BARS", "1000000000", "must be from 2 to 10000"),
        ("DB_OUTAGE_TOLERANCE_SECONDS", "-1", "must be from 0 to 3600"),
    ],
)
def test_out_of_range_values_say_the_range(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings()


def test_a_command_line_override_is_named_as_its_option() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"initial_capital": "--capital"}, initial_capital="1e999999")
    assert str(refused.value) == (
        "--capital 1e999999 is out of range: it must be from 0.00000001 to 1000000000000; "
        "fix it on the command line."
    )


def test_an_empty_claire_home_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIRE_HOME", "")
    with pytest.raises(ConfigError, match="CLAIRE_HOME= is invalid: must name a folder"):
        load_settings()
    with pytest.raises(ConfigError, match="CLAIRE_HOME is set but empty"):
        default_data_dir()


# --- the .env file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('INITIAL_CAPITAL=25\nMAX_OPEN_POSITIONS="5\nSTALE_DATA_SECONDS=9\n', 2, "never closed"),
        ("INITIAL_CAPITAL=25\n\n\nthis is garbage\n", 4, "is not NAME=value"),
        ("# settings\nINITIAL_CAPITAL=25\n}{\n", 3, "has no '='"),
        ("INITIAL_CAPITAL=25\nMEXC_API_SECRET='abc\nSTALE_DATA_SECONDS='9'\n", 2, "never closed"),
        ('INITIAL_CAPITAL=25\nMEXC_API_SECRET="abc\nSTALE_DATA_SECONDS="\n', 2, "runs over"),
        ("INITIAL_CAPITAL=25\n=25\n", 2, "is not NAME=value"),
        ("INITIAL_CAPITAL=25\nsk-live-4f9a8b7c\n", 2, "has no '='"),
        ("G='x' trailing\n", 1, "is not NAME=value"),
    ],
)
def test_a_broken_env_file_line_is_an_error_naming_it(text: str, line: int, says: str) -> None:
    Path(".env").write_text(text)

    with pytest.raises(ConfigError) as refused:
        load_settings()

    message = str(refused.value)
    assert message.startswith(f"line {line} of .env ") and says in message
    assert "\n" not in message
    for secret in ("abc", "sk-live-4f9a8b7c", "garbage"):
        assert secret not in message


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"INITIAL_CAPITAL=25\n\xff\xfe\n", bytes(range(256))],
)
def test_a_binary_env_file_is_one_sentence(content: bytes) -> None:
    Path(".env").write_bytes(content)
    with pytest.raises(ConfigError, match=r"^\.env is not a text file"):
        load_settings()


def test_a_clean_env_file_with_comments_exports_and_a_byte_order_mark_is_read() -> None:
    Path(".env").write_bytes(
        b"\xef\xbb\xbfINITIAL_CAPITAL=25\n# a comment\n\nexport MAX_OPEN_POSITIONS=5\n"
        b'STRATEGY="engine.signal.momentum:MomentumStrategy"  # default\n'
        b"STALE_DATA_SECONDS = 45\n"
    )
    s = load_settings()
    assert s.initial_capital == 25 and s.max_open_positions == 5 and s.stale_data_seconds == 45


def test_the_endpoints_listen_on_loopback_unless_an_address_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().claire_http_host == "127.0.0.1"
    monkeypatch.setenv("CLAIRE_HTTP_HOST", " 0.0.0.0 ")
    assert load_settings().claire_http_host == "0.0.0.0"
    monkeypatch.setenv("CLAIRE_HTTP_HOST", "everywhere; rm -rf /")
    with pytest.raises(ConfigError, match=r"CLAIRE_HTTP_HOST.*IP address"):
        load_settings()


# --- the data folder, the database and the services' ports ------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("70000", "=70000 is out of range: it must be from 1024 to 65000"),
        ("1023", "=1023 is out of range: it must be from 1024 to 65000"),
        ("\uff18\uff10\uff10\uff10", "is invalid: must be a port number from 1024 to 65000"),
        ("+8000", "=+8000 is invalid: must be a port number from 1024 to 65000"),
        ("8000x", "=8000x is invalid: must be a port number from 1024 to 65000"),
        ("", "= is invalid: must be a port number from 1024 to 65000"),
    ],
)
def test_a_bad_service_port_base_is_one_sentence_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("CLAIRE_SERVICE_PORT_BASE", value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("CLAIRE_SERVICE_PORT_BASE") and says in message, message
    assert "\n" not in message and message.endswith("fix it in the environment or .env.")


def test_the_service_port_base_is_read_from_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.services.ports import service_ports

    monkeypatch.delenv("CLAIRE_SERVICE_PORT_BASE")
    assert service_ports(load_settings()) is None
    Path(".env").write_text("CLAIRE_SERVICE_PORT_BASE=18100\n")
    ports = service_ports(load_settings())
    assert ports is not None and ports["feed"] == 18100 and ports["alerts"] == 18106
    monkeypatch.setenv("CLAIRE_SERVICE_PORT_BASE", "18200")  # the environment wins
    assert service_ports(load_settings()) == {n: p + 100 for n, p in ports.items()}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://claire:s3cret@db:3306/claire", "must be a PostgreSQL URL like postgresql://"),
        ("db.example:5432", "must be a PostgreSQL URL like postgresql://"),
        ("postgresql://claire:s3cret@db:99999/claire", "has a port that is not a number"),
        ("postgresql://claire:s3cret@db:\uff15\uff14\uff13\uff12/c", "has a port that is not"),
        ("postgresql://claire:s3cret@a:5432,b:54x2/claire", "has a port that is not a number"),
    ],
)
def test_a_bad_postgres_url_is_one_sentence_without_the_url(
    monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", url)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("CLAIRE_POSTGRES_URL is invalid: ") and says in message, message
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://claire:s3cret@db.example:5432/claire",
        "postgres://claire@[::1]:5433/claire?sslmode=require",
        "postgresql://claire@a:5432,b:5433/claire",
        "postgresql:///claire?host=/run/postgresql",
    ],
)
def test_postgres_urls_libpq_takes_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CLAIRE_POSTGRES_URL", url)
    found = load_settings().claire_postgres_url
    assert found is not None and found.get_secret_value() == url


def test_the_database_and_the_data_folder_are_read_from_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.home.folder import resolve_data_dir

    monkeypatch.delenv("CLAIRE_HOME")  # the environment wins over .env

    url = "postgresql://claire:s3cret@db.example:5432/claire"
    Path(".env").write_text(f"CLAIRE_POSTGRES_URL={url}\nCLAIRE_HOME={tmp_path / 'home'}\n")
    settings = load_settings()
    assert settings.claire_postgres_url is not None
    assert settings.claire_postgres_url.get_secret_value() == url
    assert resolve_data_dir(None, settings) == tmp_path / "home"
    Path(".env").write_text("CLAIRE_POSTGRES_URL=\n")  # set but empty: the embedded server
    assert load_settings().claire_postgres_url is None


def test_a_claire_home_that_is_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv("CLAIRE_HOME", str(a_file))
    with pytest.raises(ConfigError, match=r"^CLAIRE_HOME=\S+ is invalid: names a file; give a"):
        load_settings()
