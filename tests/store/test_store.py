"""Runs, resume points, incidents, CHECK constraints and error messages."""

from __future__ import annotations

import socket
from datetime import timedelta
from decimal import Decimal

import pytest

from engine.errors import InvalidEventError, StoreError
from engine.runtime import EmbeddedPostgres
from engine.store import (
    ConstraintViolation,
    Database,
    DatabaseUnavailable,
    RunStatus,
    SchemaError,
    Store,
)
from engine.store.queries import load_queries, parse_queries
from engine.store.writer import TABLE_COLUMNS
from tests.store.factories import RUN_ID, T0

pytestmark = pytest.mark.integration


# --- runs ----------------------------------------------------------------------


def test_create_run_masks_secrets_in_the_stored_config(store: Store) -> None:
    config = {
        "initial_capital": Decimal("100000"),
        "mexc_api_secret": "s3cr3t-value",
        "claire_postgres_url": "postgresql://claire:pa55word@db:5432/claire",
        "nested": {"webhook_token": "tok-123", "plain": "ok"},
    }

    assert store.create_run("r1", config=config, data_source="live:mexc", started_at=T0)
    assert not store.create_run("r1", config={}, data_source="other", started_at=T0)

    run = store.get_run("r1")
    assert run is not None and run.status is RunStatus.RUNNING
    assert run.data_source == "live:mexc" and run.started_at == T0
    text = str(run.config)
    assert "s3cr3t" not in text and "pa55word" not in text and "tok-123" not in text
    assert run.config["claire_postgres_url"] == "postgresql://claire:***@db:5432/claire"
    assert run.config["nested"] == {"webhook_token": "**********", "plain": "ok"}
    assert run.config["initial_capital"] == "100000"


def test_run_ends_once_and_a_crashed_run_can_be_reopened(store: Store, run_id: str) -> None:
    assert store.end_run(run_id, "crashed", T0 + timedelta(hours=1))
    assert not store.end_run(run_id, RunStatus.COMPLETED, T0 + timedelta(hours=2))
    assert store.get_run(run_id).status is RunStatus.CRASHED  # type: ignore[union-attr]

    assert store.reopen_run(run_id)

    run = store.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING and run.ended_at is None
    assert [r.run_id for r in store.list_runs()] == [run_id]


def test_end_run_refuses_running_as_an_end_status(store: Store, run_id: str) -> None:
    with pytest.raises(StoreError, match="not running"):
        store.end_run(run_id, "running", T0)


def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(InvalidEventError, match="started_at must be a UTC datetime"):
        store.create_run("r", config={}, data_source="x", started_at=T0.replace(tzinfo=None))


def test_resume_point_of_an_unknown_run_says_so(store: Store) -> None:
    with pytest.raises(StoreError, match="run 'nope' is not in the database"):
        store.resume_point("nope")


def test_incidents_open_and_resolve(store: Store, run_id: str) -> None:
    assert store.open_incident(
        "inc-1",
        type="database_outage",
        opened_at=T0,
        summary="PostgreSQL unreachable for 40 s",
        run_id=run_id,
        detail={"url": "postgresql://u:hunter2@h/db"},
    )
    assert store.resolve_incident("inc-1", T0 + timedelta(minutes=5))
    assert not store.resolve_incident("inc-1", T0 + timedelta(minutes=6))
    row = store.db.fetch_one("SELECT type, resolved_at, detail FROM incidents")
    assert row == {
        "type": "database_outage",
        "resolved_at": T0 + timedelta(minutes=5),
        "detail": {"url": "postgresql://u:***@h/db"},
    }
    with pytest.raises(StoreError, match="incident type 'meteor' is unknown"):
        store.open_incident("inc-2", type="meteor", opened_at=T0, summary="")


# --- CHECK constraints, proven with SQL straight to the tables ---------------------

TRADE_SQL = """
INSERT INTO trades (run_id, trade_id, order_id, ts, symbol, side, status, qty, price, fee,
                    slippage_bps, liquidity, remaining_qty)
VALUES (%(run_id)s, %(trade_id)s, 'o1', now(), %(symbol)s, %(side)s, %(status)s, %(qty)s,
        %(price)s, %(fee)s, 0, 'taker', %(remaining)s)
"""
GOOD_TRADE = {
    "run_id": RUN_ID,
    "trade_id": "t1",
    "symbol": "BTCUSDT",
    "side": "buy",
    "status": "filled",
    "qty": Decimal("1"),
    "price": Decimal("100"),
    "fee": Decimal("0"),
    "remaining": Decimal("0"),
}


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"price": Decimal("0")}, "trades_execution_price_positive"),
        ({"price": Decimal("-1")}, "trades_execution_price_positive"),
        ({"price": Decimal("NaN")}, "finite_numeric_is_finite"),
        ({"price": Decimal("Infinity")}, "finite_numeric_is_finite"),
        ({"qty": Decimal("0")}, "trades_qty_positive"),
        ({"fee": Decimal("-0.01")}, "trades_fee_not_negative"),
        ({"status": "rejected", "remaining": Decimal("1")}, "trades_status_is_fill"),
        ({"status": "FILLED", "remaining": Decimal("1")}, "trades_status_is_fill"),
        ({"side": "BUY"}, "trades_side_known"),
        ({"symbol": "BTC'); DROP TABLE trades; --"}, "market_symbol_format"),
        ({"status": "partially_filled"}, "trades_filled_means_done"),
    ],
)
def test_trades_check_constraints_refuse_bad_rows(
    shared_store: Store, change: dict[str, object], constraint: str
) -> None:
    with pytest.raises(ConstraintViolation) as caught:
        shared_store.db.execute(TRADE_SQL, {**GOOD_TRADE, **change})

    assert caught.value.constraint == constraint
    assert shared_store.db.fetch_all("SELECT * FROM trades") == []  # and the table is still there


def test_good_trade_row_passes_the_checks(store: Store, run_id: str) -> None:
    assert store.db.execute(TRADE_SQL, GOOD_TRADE) == 1


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "INSERT INTO orders (run_id, event_id, order_id, ts, symbol, side, order_type, qty,"
            " price, decision_price, intent, ttl_s) VALUES (%s, 'e', 'o', now(), 'BTCUSDT',"
            " 'buy', 'market', 1, 100, 100, 'entry', 60)",
            "orders_price_iff_limit",
        ),
        (
            "INSERT INTO orders (run_id, event_id, order_id, ts, symbol, side, order_type, qty,"
            " price, decision_price, intent, ttl_s) VALUES (%s, 'e', 'o', now(), 'BTCUSDT',"
            " 'buy', 'market', -1, NULL, 100, 'entry', 60)",
            "orders_qty_positive",
        ),
        (
            "INSERT INTO order_results (run_id, event_id, order_id, ts, symbol, side, status,"
            " remaining_qty) VALUES (%s, 'e', 'o', now(), 'BTCUSDT', 'buy', 'filled', 0)",
            "order_results_status_no_fill",
        ),
        (
            "INSERT INTO candles (run_id, event_id, ts, symbol, open_time, interval_s, open,"
            " high, low, close, volume) VALUES (%s, 'e', now(), 'BTCUSDT', now(), 300,"
            " 10, 9, 8, 9, 1)",
            "candles_range",
        ),
        (
            "UPDATE runs SET status = 'paused', ended_at = now() WHERE run_id = %s",
            "runs_status_known",
        ),
        ("UPDATE runs SET status = 'completed' WHERE run_id = %s", "runs_ended_iff_not_running"),
    ],
    ids=["market-with-price", "negative-qty", "fill-as-result", "candle-range", "run-status",
         "run-ended"],
)  # fmt: skip
def test_other_check_constraints_refuse_bad_rows(
    shared_store: Store, sql: str, constraint: str
) -> None:
    with pytest.raises(ConstraintViolation) as caught:
        shared_store.db.execute(sql, (RUN_ID,))

    assert caught.value.constraint == constraint


# --- named queries ------------------------------------------------------------------


def test_every_writer_table_has_its_insert_query() -> None:
    queries = load_queries()
    assert {f"insert_{table}" for table in TABLE_COLUMNS} <= set(queries)
    assert all(sql.strip() and not sql.lstrip().startswith("--") for sql in queries.values())


def test_parse_queries_refuses_duplicates_and_empty_blocks() -> None:
    assert parse_queries("-- name: a\n-- about a\nSELECT 1;\n-- name: b\nSELECT 2;") == {
        "a": "SELECT 1;",
        "b": "SELECT 2;",
    }
    with pytest.raises(StoreError, match="defined twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;")
    with pytest.raises(StoreError, match="has no SQL"):
        parse_queries("-- name: a\n-- only a comment\n")


# --- errors the operator reads -------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_server_error_says_what_to_do_without_the_password() -> None:
    url = f"postgresql://claire:hunter2-secret@127.0.0.1:{_closed_port()}/claire"

    with pytest.raises(DatabaseUnavailable) as caught:
        Store.open(url, connect_timeout_s=2)

    message = str(caught.value)
    assert "hunter2" not in message
    assert "postgresql://claire:***@127.0.0.1" in message
    assert "check that the server is running" in message


def test_wrong_password_error_does_not_show_either_password(pg_server: EmbeddedPostgres) -> None:
    url = pg_server.url.replace(pg_server.url.split(":")[2].split("@")[0], "wrong-pw-123")

    with pytest.raises(DatabaseUnavailable) as caught:
        Database(url)

    message = str(caught.value)
    assert "password authentication failed" in message
    assert "wrong-pw-123" not in message
    assert pg_server.url.split(":")[2].split("@")[0] not in message


def test_database_without_schema_reports_a_schema_error(empty_db_url: str) -> None:
    with Store.open(empty_db_url, migrate=False) as bare, pytest.raises(SchemaError, match="apply"):
        bare.get_run("r")


def test_store_open_migrates_and_reprs_without_password(empty_db_url: str) -> None:
    with Store.open(empty_db_url) as opened:
        assert opened.schema_version() >= 2
        assert "***" in repr(opened) and opened.db.url not in repr(opened)
        assert "***" in repr(opened.db.url)  # tracebacks print locals with repr
