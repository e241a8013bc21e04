"""The report's statistics against independent float arithmetic and their own definitions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from engine.report import stats

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=UTC)

returns = st.lists(
    st.decimals(min_value=D("-0.2"), max_value=D("0.2"), places=6, allow_nan=False),
    min_size=2,
    max_size=40,
)
equities = st.lists(
    st.decimals(min_value=D("0.5"), max_value=D("200"), places=4, allow_nan=False),
    min_size=1,
    max_size=60,
)


def _points(values: list[Decimal], step_s: int = 300) -> list[tuple[datetime, Decimal]]:
    return [(T0 + timedelta(seconds=i * step_s), v) for i, v in enumerate(values)]


@given(returns)
def test_sharpe_is_mean_over_sample_deviation_times_root_365(rs: list[Decimal]) -> None:
    xs = [float(r) for r in rs]
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    result = stats.sharpe(rs)
    if len(set(rs)) == 1:
        assert result is None  # no variation, no ratio
        return
    assert result is not None
    assert math.isclose(float(result), m / sd * math.sqrt(365), rel_tol=1e-9, abs_tol=1e-9)


@given(returns)
def test_sortino_divides_by_the_downside_deviation_over_all_days(rs: list[Decimal]) -> None:
    xs = [float(r) for r in rs]
    downside = math.sqrt(sum(min(x, 0) ** 2 for x in xs) / len(xs))
    result = stats.sortino(rs)
    if downside == 0:
        assert result is None
        return
    assert result is not None
    expected = sum(xs) / len(xs) / downside * math.sqrt(365)
    assert math.isclose(float(result), expected, rel_tol=1e-9, abs_tol=1e-9)


def test_ratios_need_two_days() -> None:
    assert stats.sharpe([D("0.01")]) is None
    assert stats.sortino([D("-0.01")]) is None
    assert stats.sharpe([D("0.01"), D("0.01")]) is None  # no variation


@given(equities, st.decimals(min_value=D("0.5"), max_value=D("200"), places=4))
def test_max_drawdown_is_the_deepest_fall_below_the_running_peak(
    values: list[Decimal], start: Decimal
) -> None:
    points = _points(values)
    result = stats.max_drawdown(points, start, T0 - timedelta(seconds=300))
    peak, deepest = float(start), 0.0
    for v in values:
        peak = max(peak, float(v))
        deepest = max(deepest, (peak - float(v)) / peak)
    assert math.isclose(float(result.frac), deepest, abs_tol=1e-12)
    assert 0 <= result.frac < 1
    if result.frac > 0:
        assert result.valley_at is not None and result.peak_at is not None
        assert result.peak_at < result.valley_at
        if result.recovered_at is not None:
            assert result.recovered_at > result.valley_at
            assert result.duration_s == (result.recovered_at - result.peak_at).total_seconds()
            recovered = dict(points)[result.recovered_at]
            assert recovered >= max([start, *(v for t, v in points if t <= result.peak_at)])
        else:
            assert result.duration_s == (points[-1][0] - result.peak_at).total_seconds()
    else:
        assert result.duration_s == 0


def test_drawdown_duration_runs_from_the_peak_to_the_recovery() -> None:
    values = [D(100), D(110), D(99), D(104), D(111), D(105)]
    result = stats.max_drawdown(_points(values), D(100))
    assert result.frac == D(11) / D(110)
    assert result.peak_at == T0 + timedelta(seconds=300)
    assert result.valley_at == T0 + timedelta(seconds=600)
    assert result.recovered_at == T0 + timedelta(seconds=1200)
    assert result.duration_s == 900


@given(equities)
def test_drawdown_series_never_negative_and_zero_at_new_peaks(values: list[Decimal]) -> None:
    series = stats.drawdown_series(_points(values), values[0])
    peak = values[0]
    for (_, dd), v in zip(series, values, strict=True):
        assert dd >= 0
        if v >= peak:
            assert dd == 0
        peak = max(peak, v)


@given(st.lists(st.decimals(min_value=D("-50"), max_value=D("50"), places=3), max_size=50))
def test_trip_figures_follow_their_definitions(pnls: list[Decimal]) -> None:
    f = stats.trip_figures(pnls)
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p <= 0]
    assert f.round_trips == len(pnls) and f.wins == len(wins)
    assert f.gross_win - f.gross_loss == sum(pnls, D(0))
    if pnls:
        assert f.win_rate_frac == D(len(wins)) / len(pnls)
        assert f.expectancy == sum(pnls, D(0)) / len(pnls)
    if f.gross_loss > 0:
        assert f.profit_factor == sum(wins, D(0)) / -sum(losses, D(0))
    else:
        assert f.profit_factor is None
    if f.avg_loss != 0:
        assert f.expectancy_ratio == (1 + f.avg_win / abs(f.avg_loss)) * f.win_rate_frac - 1


def test_returns_chain_from_the_start() -> None:
    assert stats.returns(D(100), [D(110), D(99)]) == [D("0.1"), D("-0.1")]


def test_day_end_equity_keeps_each_days_last_point() -> None:
    points = [
        (datetime(2026, 1, 1, 23, 0, tzinfo=UTC), D(1)),
        (datetime(2026, 1, 1, 23, 55, tzinfo=UTC), D(2)),
        (datetime(2026, 1, 2, 0, 0, tzinfo=UTC), D(3)),
        (datetime(2026, 1, 3, 12, 0, tzinfo=UTC), D(4)),
    ]
    assert [e for _, e in stats.day_end_equity(points)] == [D(2), D(3), D(4)]


@given(st.lists(st.decimals(min_value=D(0), max_value=D(1), places=3), min_size=1, max_size=30))
def test_time_weighted_mean_with_even_spacing_is_the_plain_mean(values: list[Decimal]) -> None:
    points = _points(values, 60)
    end = points[-1][0] + timedelta(seconds=60)
    assert stats.time_weighted_mean(points, end) == sum(values, D(0)) / len(values)


def test_time_weighted_mean_weights_by_how_long_a_value_held() -> None:
    points = [(T0, D("0.1")), (T0 + timedelta(seconds=30), D("0.4"))]
    assert stats.time_weighted_mean(points, T0 + timedelta(seconds=120)) == D("0.325")


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=80))
def test_max_in_window_counts_times_within_any_minute(offsets: list[int]) -> None:
    times = sorted(T0 + timedelta(seconds=s) for s in offsets)
    best = max(
        (sum(1 for u in times if t <= u < t + timedelta(seconds=60)) for t in times), default=0
    )
    assert stats.max_in_window(times, 60) == best


def test_longest_silence_is_the_gap_beyond_the_bar_interval() -> None:
    times = [T0 + timedelta(minutes=m) for m in (0, 5, 10, 30, 35)]
    assert stats.longest_silence(times, 300) == 900
    assert stats.longest_silence(times[:2], 300) == 0
