"""What `claire stack up` checks before it creates anything: live settings and ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from engine.errors import ConfigError
from engine.stack.checks import busy_ports, check_ports, port_variable, quote_of, stack_mode
from engine.stack.config import StackConfig, port_free
from engine.stack.spec import BY_NAME, STACK

SECRETS = {"POSTGRES_PASSWORD": "p", "REDIS_PASSWORD": "r", "GRAFANA_ADMIN_PASSWORD": "g",
           "CLAIRE_WEB_TOKEN": "t"}  # fmt: skip


def test_an_empty_exchange_is_the_replay_of_the_files() -> None:
    mode = stack_mode({"CLAIRE_REPLAY_FILES": "ETH_BTC-5m.csv, LTC_BTC-5m.csv"})
    assert not mode.live
    assert mode.files == ("ETH_BTC-5m.csv", "LTC_BTC-5m.csv")
    assert mode.describe() == "replay: ETH_BTC-5m.csv, LTC_BTC-5m.csv"


def test_a_live_stack_names_its_exchange_market_and_symbols() -> None:
    mode = stack_mode(
        {
            "CLAIRE_EXCHANGE": "MEXC",
            "CLAIRE_MARKET": "futures",
            "CLAIRE_SYMBOLS": "btc_usdt,ETHUSDT",
        }
    )
    assert mode.live and mode.exchange == "mexc" and mode.market == "futures"
    assert mode.symbols == ("BTCUSDT", "ETHUSDT")
    assert mode.describe().startswith("live: mexc futures, symbols BTCUSDT, ETHUSDT")


def test_the_market_defaults_to_spot() -> None:
    assert stack_mode({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": "BTCUSDT"}).market == "spot"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CLAIRE_EXCHANGE": "binance", "CLAIRE_SYMBOLS": "BTCUSDT"}, "CLAIRE_EXCHANGE"),
        ({"CLAIRE_MARKET": "margin"}, "CLAIRE_MARKET"),
        ({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_MARKET": "perp", "CLAIRE_SYMBOLS": "BTCUSDT"},
         "CLAIRE_MARKET"),
        ({"CLAIRE_EXCHANGE": "mexc"}, "CLAIRE_SYMBOLS"),
        ({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": " , "}, "CLAIRE_SYMBOLS"),
        ({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": "BTCUSDT,ETHBTC"}, "CLAIRE_SYMBOLS"),
        ({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": "BTC-USDT"}, "CLAIRE_SYMBOLS"),
        ({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": "USDT"}, "CLAIRE_SYMBOLS"),
    ],
)  # fmt: skip
def test_inconsistent_live_settings_are_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        stack_mode(env)
    assert "compose/.env" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_mixed_quotes_say_which_symbol_is_in_which_quote() -> None:
    with pytest.raises(ConfigError) as caught:
        stack_mode({"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": "BTCUSDT,ETHBTC,SOLUSDT"})
    assert "ETHBTC in BTC; BTCUSDT, SOLUSDT in USDT" in str(caught.value)


def test_symbols_for_a_replay_are_not_checked() -> None:
    assert stack_mode({"CLAIRE_SYMBOLS": "BTCUSDT,ETHBTC"}).live is False


def test_quotes_match_the_longest_currency() -> None:
    assert quote_of("BTCFDUSD") == "FDUSD"
    assert quote_of("BTCUSDT") == "USDT"
    assert quote_of("ETHBTC") == "BTC"
    assert quote_of("BTCXYZ") is None


def test_each_service_names_the_variable_of_its_port() -> None:
    assert port_variable(BY_NAME["cdb_postgres"]) == "POSTGRES_PORT"
    assert port_variable(BY_NAME["cdb_risk"]) == "CLAIRE_RISK_PORT"
    assert port_variable(BY_NAME["cdb_grafana"]) == "GRAFANA_PORT"
    assert port_variable(BY_NAME["cdb_web"]) == "CLAIRE_WEB_PORT"


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port a real socket holds on 127.0.0.1 while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_busy_port_is_named_with_its_service_and_variable(held_port: int) -> None:
    assert not port_free(held_port)
    config = StackConfig.load(
        environ={**SECRETS, "CLAIRE_RISK_PORT": str(held_port)}, compose_dir=None
    )
    services = [BY_NAME["cdb_risk"], BY_NAME["cdb_core"]]
    found = busy_ports(config, services, free=lambda port: port != 8001 and port_free(port))
    assert found[0] == f"port {held_port} of cdb_risk (CLAIRE_RISK_PORT)"
    with pytest.raises(ConfigError) as caught:
        check_ports(config, [BY_NAME["cdb_risk"]])
    message = str(caught.value)
    assert f"port {held_port} of cdb_risk (CLAIRE_RISK_PORT) is busy" in message
    assert "compose/.env" in message


def test_a_running_service_holds_its_own_port(held_port: int) -> None:
    config = StackConfig.load(environ={**SECRETS, "POSTGRES_PORT": str(held_port)})
    check_ports(config, [BY_NAME["cdb_postgres"]], own=lambda s: s.name == "cdb_postgres")
    with pytest.raises(ConfigError, match="POSTGRES_PORT"):
        check_ports(config, [BY_NAME["cdb_postgres"]])


def test_free_ports_pass(held_port: int) -> None:
    config = StackConfig.load(environ=SECRETS)
    assert busy_ports(config, STACK, free=lambda port: True) == []


def test_a_live_stacks_length_comes_from_claire_live_days() -> None:
    live = {"CLAIRE_EXCHANGE": "mexc", "CLAIRE_SYMBOLS": "ETHBTC,LTCBTC"}
    assert stack_mode(live).days is None  # until stopped
    mode = stack_mode({**live, "CLAIRE_LIVE_DAYS": " 2.5 "})
    assert mode.days == 2.5
    assert "symbols ETHBTC, LTCBTC for 2.5 days" in mode.describe()
    assert stack_mode({"CLAIRE_LIVE_DAYS": "x"}).days is None  # a replay ignores it
    for wrong in ("x", "0", "-1", "nan", "4000"):
        with pytest.raises(ConfigError, match=r"CLAIRE_LIVE_DAYS is .*leave it empty") as caught:
            stack_mode({**live, "CLAIRE_LIVE_DAYS": wrong})
        assert repr(wrong) in str(caught.value)
