"""The stack's live run without Docker: `claire stack init-run` as `cdb_init` runs it,
with `CLAIRE_EXCHANGE` set, against an embedded PostgreSQL and Redis standing in for
the stack's and the local MEXC server standing in for the exchange; then the
services started as the stack's containers start them, on the recorded run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from claire_cli.main import app
from engine.bus.redis import RedisBus
from engine.errors import ClaireError
from engine.run.stack_runs import run_progress, wait_for_run
from engine.runtime.files import free_port
from engine.services.host import SERVICES, stream_prefix
from engine.stack.config import StackConfig
from engine.store import RunStatus, Store
from tests.conftest import MARKET
from tests.mexc_server import MexcServer
from tests.paperrun.runs import claire_process
from tests.services.test_live_services import ServerThread

pytestmark = pytest.mark.integration

SYMBOLS = "ETHBTC,LTCBTC"


@pytest.fixture
def exchange() -> Iterator[MexcServer]:
    running = ServerThread()
    try:
        yield running.server
    finally:
        running.close()


@pytest.fixture
def now_exchange() -> Iterator[MexcServer]:
    """The local server with candles from now on, faster than the wall clock: a live
    run's market day passes in seconds."""
    running = ServerThread(candles_from_ms=int(time.time() * 1000))
    try:
        yield running.server
    finally:
        running.close()


def live_env(exchange: MexcServer, backing: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **backing,
        **exchange.env(),
        "CLAIRE_EXCHANGE": "mexc",
        "CLAIRE_MARKET": "spot",
        "CLAIRE_SYMBOLS": SYMBOLS,
        **extra,
    }


def init_run(env: dict[str, str], home: Path, run_id: str = "stack") -> tuple[int, str, str]:
    args = ["stack", "init-run", "--run", run_id, "--market-dir", str(home),
            "--files", "none.csv", "--data-dir", str(home)]  # fmt: skip
    child = claire_process(args, env)
    out, err = child.communicate(timeout=180)
    return child.returncode, out, err


def recorded(url: str, run_id: str) -> Any:
    with Store.open(url, external=True) as store:
        return store.get_run(run_id)


def one_sentence(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_init_run_records_a_live_run_with_the_exchanges_rules_and_resumes_it(
    exchange: MexcServer, backing: dict[str, str], claire_home: Path
) -> None:
    env = live_env(exchange, backing, CLAIRE_LIVE_DAYS="2")
    code, out, err = init_run(env, claire_home)
    assert code == 0, err
    assert "live run stack recorded (mexc spot: ETHBTC, LTCBTC)" in out
    run = recorded(backing["CLAIRE_POSTGRES_URL"], "stack")
    live = run.config["live"]
    assert "replay" not in run.config
    assert (live["exchange"], live["market"], live["symbols"]) == (
        "mexc",
        "spot",
        SYMBOLS.split(","),
    )
    assert live["days"] == 2
    assert set(live["specs"]) == set(SYMBOLS.split(","))
    assert run.config["quote_currency"] == "BTC"
    assert run.planned_end is not None
    assert run.data_source == "mexc spot: ETHBTC,LTCBTC"
    bus = RedisBus(backing["CLAIRE_REDIS_URL"], prefix=stream_prefix("stack"))
    try:
        groups = {g["name"].decode() for g in bus.redis.xinfo_groups(bus.key("market_data"))}
    finally:
        bus.close()
    assert {"signal", "execution", "portfolio"} <= groups
    # Before its services publish: live, nothing out, nothing to handle, not complete.
    state = run_progress(stack_config(backing))
    assert (state["live"], state["published"], state["lag"], state["complete"]) == (
        True, 0, 0, False,
    )  # fmt: skip
    with pytest.raises(ClaireError, match="live run stack published no market time in 1 s"):
        wait_for_run(stack_config(backing), timeout_s=1, poll_s=0.2)

    again, out, err = init_run(env, claire_home)
    assert again == 0, err
    assert "live run stack exists; its services resume it" in out
    assert recorded(backing["CLAIRE_POSTGRES_URL"], "stack").started_at == run.started_at


def test_init_run_without_an_exchange_records_the_replay(
    backing: dict[str, str], claire_home: Path
) -> None:
    args = ["stack", "init-run", "--run", "stack", "--market-dir", str(MARKET),
            "--data-dir", str(claire_home), "--days", "1"]  # fmt: skip
    child = claire_process([*args, "--files", "NOPE_BTC-5m.csv"], backing)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 1
    assert "CLAIRE_MARKET_DATA" in one_sentence(err)  # the replay's check, not the exchange's
    child = claire_process([*args, "--files", "ETH_BTC-5m.csv"], backing)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out == "run stack recorded\n"
    run = recorded(backing["CLAIRE_POSTGRES_URL"], "stack")
    assert "live" not in run.config
    assert [Path(f).name for f in run.config["replay"]["files"]] == ["ETH_BTC-5m.csv"]


def test_an_unknown_symbol_or_an_unreachable_exchange_is_one_sentence(
    exchange: MexcServer, backing: dict[str, str], claire_home: Path
) -> None:
    env = live_env(exchange, backing, CLAIRE_SYMBOLS="ETHBTC,DOGEBTC")
    code, _, err = init_run(env, claire_home)
    assert code == 1
    said = one_sentence(err)
    assert "CLAIRE_SYMBOLS names DOGEBTC, not listed on mexc spot" in said
    assert "ETHBTC" not in said

    nowhere = f"http://127.0.0.1:{free_port()}"
    env = live_env(exchange, backing, CLAIRE_MEXC_SPOT_REST_URL=nowhere)
    code, _, err = init_run(env, claire_home, run_id="other")
    assert code == 1
    # The retries are logged as they happen; the error is one sentence.
    said = one_sentence("\n".join(ln for ln in err.splitlines() if "retrying in" not in ln))
    assert nowhere in said and "CLAIRE_MEXC_SPOT_REST_URL" in said
    with Store.open(backing["CLAIRE_POSTGRES_URL"], external=True) as store:
        assert store.get_run("stack") is None and store.get_run("other") is None


@pytest.mark.slow
def test_the_stacks_services_drive_the_recorded_live_run(
    exchange: MexcServer, backing: dict[str, str], claire_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "buyer.py").write_text(BUYER, encoding="utf-8")
    env = live_env(
        exchange, backing, STRATEGY=f"{tmp_path / 'buyer.py'}:Buyer", FEED_WATERMARK_MS="100",
        STALE_DATA_SECONDS="3600",
    )  # fmt: skip
    code, _, err = init_run(env, claire_home)
    assert code == 0, err
    children = list(start_services(env, claire_home).values())
    try:
        url = backing["CLAIRE_POSTGRES_URL"]
        bus = RedisBus(backing["CLAIRE_REDIS_URL"], prefix=stream_prefix("stack"))
        deadline = time.monotonic() + 60
        while not (_published(bus) and _count(url, "candles") and _count(url, "trades")):
            for child in children:
                assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "no market data and fills in 60 s"
            time.sleep(0.5)
        bus.close()
        state = wait_for_run(stack_config(backing), timeout_s=30)
        assert state["live"] and state["published"] > 0 and state["lag"] >= 0
        assert not state["complete"]
        said = stack_wait(stack_config(backing), tmp_path / "compose")
        assert said.exit_code == 0, said.output
        assert re.fullmatch(
            r"live run stack: \d+ market times published, \d+ messages still to handle; it "
            r"runs until `claire papertest stop --stack` or its planned end\n",
            said.stdout,
        ), said.stdout
    finally:
        end_all(children)
    with Store.open(backing["CLAIRE_POSTGRES_URL"], external=True) as store:
        run = store.get_run("stack")
        assert run is not None and run.status is not RunStatus.COMPLETED  # wait left it so
        fills = store.db.fetch_all(
            "SELECT symbol, side FROM trades WHERE run_id = %(r)s", {"r": "stack"}
        )
    assert {f["symbol"] for f in fills} <= set(SYMBOLS.split(","))
    assert "buy" in {f["side"] for f in fills}


@pytest.mark.slow
def test_the_steward_completes_a_live_run_at_its_planned_end(
    now_exchange: MexcServer, backing: dict[str, str], claire_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "buyer.py").write_text(BUYER, encoding="utf-8")
    env = live_env(
        now_exchange, backing, STRATEGY=f"{tmp_path / 'buyer.py'}:Buyer",
        FEED_WATERMARK_MS="100", STALE_DATA_SECONDS="3600", CLAIRE_LIVE_DAYS="1",
    )  # fmt: skip
    code, _, err = init_run(env, claire_home)
    assert code == 0, err
    url = backing["CLAIRE_POSTGRES_URL"]
    children = start_services(env, claire_home)
    try:
        children["steward"] = claire_process(
            ["stack", "steward", "--run", "stack", "--data-dir", str(claire_home),
             "--poll", "0.1"], env,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while recorded(url, "stack").status is RunStatus.RUNNING:
            for name, child in children.items():
                assert child.poll() is None, (name, child.communicate())
            assert time.monotonic() < deadline, "the live run was not completed in 240 s"
            time.sleep(0.5)
        run = recorded(url, "stack")
        backups = claire_home / "backups"
        deadline = time.monotonic() + 60  # the steward's next look at the backups
        while not _backups_for(backups, "run-end"):
            assert time.monotonic() < deadline, "no run-end backup in 60 s"
            time.sleep(0.5)
        for name, child in children.items():
            assert child.poll() is None, (name, child.communicate())  # up and idle
    finally:
        end_all(list(children.values()))
    assert run.status is RunStatus.COMPLETED and run.end_reason is None
    assert run.planned_end is not None and run.ended_at is not None
    assert run.last_event_ts is not None and run.last_event_ts <= run.planned_end
    # Market time went up to the planned end: the feed stopped at the last 5-minute bar.
    assert run.planned_end - run.last_event_ts < timedelta(minutes=5)
    reports = claire_home / "reports" / "stack"
    assert (reports / "final.md").is_file() and (reports / "final.html").is_file()
    assert _backups_for(backups, "scheduled")  # a live run's first, at its start
    with Store.open(url, external=True) as store:
        assert not store.steward_alive("stack", 30)  # it left when the run ended
        fills = store.db.fetch_all("SELECT side FROM trades WHERE run_id = 'stack'")
    assert "buy" in {f["side"] for f in fills}


def start_services(env: dict[str, str], home: Path) -> dict[str, subprocess.Popen[str]]:
    """The run's services, each as its container runs it, by name."""
    base = int(os.environ["CLAIRE_SERVICE_PORT_BASE"])
    children = {}
    for n, name in enumerate(SERVICES):
        args = ["engine", "run", name, "--run", "stack", "--data-dir", str(home),
                "--port", str(base + n)]  # fmt: skip
        children[name] = claire_process(args, env)
    return children


def end_all(children: list[subprocess.Popen[str]]) -> None:
    """SIGTERM to each, then wait; one that does not end in a minute is killed."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()


def _backups_for(folder: Path, reason: str) -> list[Path]:
    """The backup manifests in `folder` taken for `reason`."""
    return [
        path
        for path in folder.glob("claire-*.json")
        if json.loads(path.read_text(encoding="utf-8")).get("reason") == reason
    ]


def stack_config(backing: dict[str, str]) -> StackConfig:
    """compose/.env of a live stack whose Redis is the embedded one."""
    url = urlsplit(backing["CLAIRE_REDIS_URL"])
    env = {"REDIS_PASSWORD": url.password or "", "REDIS_PORT": str(url.port),
           "CLAIRE_EXCHANGE": "mexc", "CLAIRE_RUN_ID": "stack"}  # fmt: skip
    return StackConfig(env=env)


def stack_wait(config: StackConfig, folder: Path) -> Any:
    """`claire stack wait` with a compose/.env of `config`'s values."""
    folder.mkdir()
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in config.env.items()))
    return CliRunner().invoke(app, ["stack", "wait", "--compose-dir", str(folder)])


def _published(bus: RedisBus) -> int:
    """Market times the feed service put onto `market_data`."""
    return int(bus.redis.get(bus.key("feed:position")) or 0)


def _count(url: str, table: str) -> int:
    with Store.open(url, external=True) as store:
        row = store.db.fetch_one(
            f"SELECT count(*) AS n FROM {table} WHERE run_id = %(r)s",
            {"r": "stack"},
        )
    return int(row["n"]) if row else 0


BUYER = '''
from decimal import Decimal
from engine.events import Side
from engine.signal.base import Intent, Strategy


class Buyer(Strategy):
    """Buys a little on every candle: fills are certain."""

    name = "test-stack-buyer"

    def on_candle(self, candle, context):
        return (Intent(candle.symbol, Side.BUY, Decimal("0.01"), "buy"),)

    def export_state(self):
        return {}

    def import_state(self, state):
        pass
'''
