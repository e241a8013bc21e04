"""A persisted run writes its batches in the background, one at a time, and loses none.

A batch due by size is written by a thread while the pipeline goes on; its failure
surfaces at the next flush with its events kept for the next write, and a stop that
cannot wait does not sit out an outage the batch in flight is riding out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal as D

import pytest

from engine.config import load_settings
from engine.events import Candle, Event
from engine.kernel.persisted import PersistedRun
from engine.kernel.pipeline import Pipeline
from engine.markets import SymbolSpec
from engine.store import ConstraintViolation, Database, DatabaseUnavailable, Store
from engine.store.retry import OutageTolerance
from tests.store import factories as f

pytestmark = pytest.mark.integration

SPEC = SymbolSpec("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.0001"), D(0), D("0.0005"))


def build(observer: Callable[[Event], None]) -> Pipeline:
    return Pipeline(load_settings(initial_capital="1000"), {"BTCUSDT": SPEC}, observers=[observer])


def candles(first: int, count: int) -> list[Candle]:
    return [f.candle(n) for n in range(first, first + count)]


def stored_candles(store: Store, run_id: str) -> int:
    return store.count_rows(run_id)["candles"]


def test_batches_are_written_in_the_background_and_all_of_them_land(
    store: Store, run_id: str
) -> None:
    run = PersistedRun(store, run_id, build, flush_every_events=3, flush_every_s=3600)
    for candle in candles(0, 10):
        run.process(candle)
    run.finish()
    run.close()

    assert stored_candles(store, run_id) == 10
    checkpoint = store.load_checkpoint(run_id)
    assert checkpoint is not None and checkpoint.market_events == 10
    assert checkpoint.last_event_id == f.candle(9).event_id
    assert run.rows_written == sum(store.count_rows(run_id).values())


def test_a_failed_background_batch_is_raised_at_the_next_flush_and_written_with_it(
    store: Store,
) -> None:
    # No run row yet: the database refuses the first batch (its run does not exist).
    run = PersistedRun(store, f.RUN_ID, build, flush_every_events=3, flush_every_s=3600)
    for candle in candles(0, 3):
        run.process(candle)  # the third sends the batch to the writing thread

    with pytest.raises(ConstraintViolation):
        run.flush()

    store.create_run(f.RUN_ID, config={}, data_source="replay:test", started_at=f.T0)
    run.flush()  # the refused batch's events come first in this one
    run.close()
    assert stored_candles(store, f.RUN_ID) == 3


def test_a_stop_does_not_wait_out_an_outage_the_batch_in_flight_rides_out(
    store: Store, run_id: str, pg_admin: Database, db_url: str
) -> None:
    name = db_url.rsplit("/", 1)[-1].split("?", 1)[0]
    retried = threading.Event()

    def sleep(_seconds: float) -> None:
        retried.set()
        threading.Event().wait(0.01)

    # A tolerance the outage never exhausts: its clock stands still.
    tolerance = OutageTolerance(seconds=3600, sleep=sleep, monotonic=lambda: 0.0)
    run = PersistedRun(
        store, run_id, build, flush_every_events=3, flush_every_s=3600, tolerance=tolerance
    )
    pg_admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    pg_admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    try:
        for candle in candles(0, 3):
            run.process(candle)
        assert retried.wait(30), "the batch in flight never met the outage"

        with pytest.raises(DatabaseUnavailable):
            run.flush(patient=False)  # gives the batch in flight up, then tries once
    finally:
        pg_admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    run.flush()
    run.close()
    assert stored_candles(store, run_id) == 3
