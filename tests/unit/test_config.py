from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import load_settings
from engine.errors import ConfigError


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
