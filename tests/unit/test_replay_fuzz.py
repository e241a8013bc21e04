"""Fuzzing replay with hostile rows and files: nothing crashes, bad rows go, good rows stay.

Each example writes a file of good candles with 10 to 30 hostile rows among them
(huge or impossible numbers, impossible times, Latin-1 bytes, random bytes, short,
over-long or inconsistent rows), so the 120 examples feed well over 1,000 hostile
rows to replay; another test feeds whole files of random bytes.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import DataSourceError
from engine.feeds.replay import RecordedFile, plan_replay
from tests.hostile import hostile_candle_file

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(rng=st.randoms(use_true_random=False), good=st.integers(1, 40), bad=st.integers(10, 30))
def test_every_hostile_row_is_refused_with_a_reason_and_every_good_row_kept(
    rng: random.Random, good: int, bad: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        written = hostile_candle_file(Path(folder) / "ETH_BTC-5m.csv", rng, good, bad)

        plan = plan_replay([written.path])
        events = list(plan.events())

        assert [RecordedFile.time_of(e).timestamp() * 1000 for e in events] == written.good_times
        assert sorted(r.line for r in plan.rejected) == written.bad_lines
        assert plan.rejected_count == bad
        for rejected in plan.rejected:
            code, _, why = rejected.reason.partition(": ")
            assert code.isidentifier() and why and "\n" not in rejected.reason


@FUZZ
@given(content=st.binary(max_size=3000), name=st.sampled_from(["ETH_BTC-5m.csv", "X_Y-trades.csv"]))
def test_a_file_of_random_bytes_is_one_sentence_or_refused_rows(content: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            plan = plan_replay([path])
        except DataSourceError as refused:
            assert "\n" not in str(refused) and len(str(refused)) < 400
        else:  # only if the bytes happened to hold a header and a valid row
            assert list(plan.events())
