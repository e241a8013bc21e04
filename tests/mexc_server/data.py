"""The recorded market data the fake server plays, kept as the CSV's exact text.

Numbers stay strings from file to wire so a test can compare what the feed
produced with the file, digit for digit.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def shared_data_dir() -> Path:
    """`CLAIRE_SHARED_DATA` if set, else ../shared/data next to the repository."""
    override = os.environ.get("CLAIRE_SHARED_DATA")
    if override:
        return Path(override)
    # tests/mexc_server/data.py -> parents[2] is the repository root.
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@dataclass(frozen=True, slots=True)
class TapeTrade:
    time_ms: int
    trade_id: int
    side: str  # taker side: "buy" or "sell"
    price: str
    amount: str


@dataclass(frozen=True, slots=True)
class TapeCandle:
    open_time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str


@dataclass(frozen=True, slots=True)
class TapeFunding:
    time_ms: int
    rate: str


def _rows(relative: str) -> list[dict[str, str]]:
    path = shared_data_dir() / relative
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def load_trades(relative: str = "market/XRP_ETH-2019-10-11-trades.csv") -> tuple[TapeTrade, ...]:
    return tuple(
        TapeTrade(int(r["time_ms"]), int(r["trade_id"]), r["side"], r["price"], r["amount"])
        for r in _rows(relative)
    )


@cache
def load_candles(relative: str) -> tuple[TapeCandle, ...]:
    return tuple(
        TapeCandle(int(r["open_time"]), r["open"], r["high"], r["low"], r["close"], r["volume"])
        for r in _rows(relative)
    )


@cache
def load_funding(
    relative: str = "market/futures/XRP_USDT-8h-funding.csv",
) -> tuple[TapeFunding, ...]:
    return tuple(TapeFunding(int(r["time_ms"]), r["funding_rate"]) for r in _rows(relative))
