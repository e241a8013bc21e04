"""Hostile replay input: rows and files that cannot be real market data.

`HOSTILE_ROWS` are makers of one bad candle row each; `hostile_candle_file`
writes good rows on a five-minute grid with bad rows between them and says
which lines are which. The makers take a `random.Random`, so the same code
serves hypothesis (through `st.randoms()`) and seeded end-to-end tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEADER = b"open_time,open,high,low,close,volume\n"
T0 = 1515560100000  # 2018-01-10 04:55 UTC
FIVE_MIN = 300_000

Maker = Callable[[random.Random, int], bytes]  # (random, open_time of a good slot) -> one line


def _row(*fields: object) -> bytes:
    return ",".join(str(f) for f in fields).encode()


def good_row(rng: random.Random, open_ms: int) -> bytes:
    low = rng.uniform(0.001, 100.0)
    high = low * rng.uniform(1.0, 1.2)
    open_, close = rng.uniform(low, high), rng.uniform(low, high)
    volume = rng.choice([0, rng.uniform(1e-8, 1e6)])
    return _row(open_ms, repr(open_), repr(high), repr(low), repr(close), repr(volume))


def huge_volume(rng: random.Random, t: int) -> bytes:
    return _row(t, 1, 2, 0.5, 1.5, rng.choice(["1e28", "1e308", "1e999999999", "9" * 40]))


def impossible_price(rng: random.Random, t: int) -> bytes:
    value = rng.choice(["1e13", "1e-13", "1e400", "-1e400", "1e999999999"])
    return _row(t, value, value, value, value, 1)


def impossible_time(rng: random.Random, t: int) -> bytes:
    when = rng.choice(
        ["-1000", "0", "99999999999999999999", "253402300799000", "1230768000000", "1e12",
         "", "soon", str(2**63)]
    )  # fmt: skip
    return _row(when, 1, 2, 0.5, 1.5, 10)


def not_a_number(rng: random.Random, t: int) -> bytes:
    field = rng.randrange(1, 6)
    values: list[object] = [t, 1, 2, 0.5, 1.5, 10]
    values[field] = rng.choice(["nan", "inf", "-inf", "0x10", "", "NULL", "1e", "--1", "1.2.3"])
    return _row(*values)


def not_positive(rng: random.Random, t: int) -> bytes:
    return rng.choice(
        [_row(t, 0, 2, 0.5, 1.5, 10), _row(t, -1, 2, 0.5, 1.5, 10), _row(t, 1, 2, 0.5, 1.5, -3)]
    )


def inconsistent(rng: random.Random, t: int) -> bytes:
    return rng.choice([_row(t, 3, 2, 0.5, 1.5, 10), _row(t, 1, 2, 0.5, 0.4, 10)])


def short_row(rng: random.Random, t: int) -> bytes:
    return _row(*[t, 1, 2, 0.5, 1.5][: rng.randrange(1, 5)])


def latin_1(rng: random.Random, t: int) -> bytes:
    return _row(t, 1, 2, 0.5, 1.5, 10) + rng.choice([b"\xe9", b"\xff", b"\xa3"])


def random_bytes(rng: random.Random, t: int) -> bytes:
    body = bytes(rng.choice([b for b in range(256) if b != 0x0A]) for _ in range(rng.randrange(40)))
    return b"\x00" + body  # a NUL first: never a blank line, never a number


def overlong(rng: random.Random, t: int) -> bytes:
    return _row(t, 1, 2, 0.5, 1.5, "1" * rng.randrange(4100, 9000))


HOSTILE_ROWS: tuple[Maker, ...] = (
    huge_volume,
    impossible_price,
    impossible_time,
    not_a_number,
    not_positive,
    inconsistent,
    short_row,
    latin_1,
    random_bytes,
    overlong,
)


@dataclass(frozen=True)
class HostileFile:
    path: Path
    good_times: list[int]  # open_time of every good row, in order
    bad_lines: list[int]  # line numbers of the hostile rows (the header is line 1)


def hostile_candle_file(
    path: Path, rng: random.Random, good: int, bad: int, after_good: bool = True
) -> HostileFile:
    """`good` good rows on a five-minute grid (with gaps) and `bad` hostile rows among them.

    With `after_good`, hostile rows only follow the first good row (so none is read
    while looking for the file's first valid row, which every run does).
    """
    kinds = ["good"] * good + ["bad"] * bad
    rng.shuffle(kinds)
    if after_good and kinds[0] != "good":
        kinds.remove("good")
        kinds.insert(0, "good")
    lines, good_times, bad_lines = [], [], []
    slot = T0
    for number, kind in enumerate(kinds, start=2):
        if kind == "good":
            slot += FIVE_MIN * rng.choice([1, 1, 1, 2, 12])
            lines.append(good_row(rng, slot))
            good_times.append(slot)
        else:
            lines.append(rng.choice(HOSTILE_ROWS)(rng, slot + FIVE_MIN))
            bad_lines.append(number)
    path.write_bytes(HEADER + b"\n".join(lines) + b"\n")
    return HostileFile(path, good_times, bad_lines)
