"""Warnings before a run starts: settings that run, but not the way the trader meant.

Pure functions over what the run will trade; the caller shows the sentences.

- Capital in the wrong currency: `INITIAL_CAPITAL` defaults to 100000, meant in
  a USD stablecoin. A run quoted in BTC with that default trades 100,000 BTC.
- Capital too large for the market: one entry bigger than a typical bar's
  whole traded volume fills in slivers over many bars, or expires.
- A strategy that cannot see the data: a candle strategy over a trades-only
  replay (or the reverse) never makes a signal.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from engine.events import Candle
from engine.feeds.replay import ReplayPlan
from engine.plain import plain_decimal
from engine.signal.base import Strategy

USD_STABLECOINS: Final = frozenset(
    {"USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP", "PYUSD", "USDE", "USDD", "USD"}
)
# An entry larger than this share of a symbol's median bar volume is flagged.
LARGE_SHARE_OF_BAR: Final = Decimal(1)


@dataclass(frozen=True, slots=True)
class MarketProfile:
    """What one replayed symbol looks like: its data kind and typical bar."""

    symbol: str
    base: str
    kind: str  # "candles" or "trades"
    interval_s: int | None = None
    median_volume: Decimal | None = None  # base units per bar
    median_price: Decimal | None = None


def replay_profiles(plan: ReplayPlan) -> list[MarketProfile]:
    profiles = []
    for f in plan.files:
        if f.kind != "candles":
            profiles.append(MarketProfile(f.symbol, f.base, "trades"))
            continue
        volumes, closes = [], []
        for event in plan.file_events(f):
            if isinstance(event, Candle):
                volumes.append(event.volume)
                closes.append(event.close)
        profiles.append(
            MarketProfile(
                f.symbol,
                f.base,
                "candles",
                f.interval_s,
                statistics.median(volumes) if volumes else None,
                statistics.median(closes) if closes else None,
            )
        )
    return profiles


def _amount(value: Decimal) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _interval(seconds: int | None) -> str:
    if not seconds:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit} "
    return f"{seconds}s "


def capital_warnings(
    capital: Decimal,
    capital_given: bool,
    quote: str,
    entry_frac: Decimal,
    profiles: Sequence[MarketProfile],
) -> list[str]:
    out = []
    amount = plain_decimal(capital)
    if not capital_given and quote.upper() not in USD_STABLECOINS:
        out.append(
            f"INITIAL_CAPITAL is the default {amount}, meant in a USD stablecoin, but this run "
            f"is quoted in {quote}: it would trade with {amount} {quote}, far more than these "
            f"markets carry; pass --capital with an amount of {quote}, like --capital 10."
        )
    entry = capital * entry_frac
    heavy = []
    for p in profiles:
        if not p.median_volume or not p.median_price:
            continue
        qty = entry / p.median_price
        if qty > p.median_volume * LARGE_SHARE_OF_BAR:
            heavy.append(
                f"{p.symbol} about {_amount(qty)} {p.base}, {qty / p.median_volume:,.0f} times "
                f"its median {_interval(p.interval_s)}bar volume of {_amount(p.median_volume)}"
            )
    if heavy:
        out.append(
            f"one entry ({plain_decimal(entry_frac * 100)} % of {amount} {quote}) is larger than "
            f"what the market trades in a typical bar: {'; '.join(heavy)}. Orders will fill in "
            "small parts over many bars or expire; pass a smaller --capital."
        )
    return out


def strategy_warnings(strategy: type[Strategy], kinds: Iterable[str]) -> list[str]:
    """A strategy that never sees the data it reads makes no signals and no fills."""
    reads = {
        kind
        for kind, method in (("candles", "on_candle"), ("trades", "on_trade"))
        if getattr(strategy, method) is not getattr(Strategy, method)
    }
    name = strategy.__name__
    given = set(kinds)
    if not reads:
        return [
            f"{name} overrides neither on_candle nor on_trade, so it never trades; "
            "override on_candle(self, candle, context)."
        ]
    if given and not reads & given:
        if "candles" in reads:
            return [
                f"the market data holds only trades, and {name} only reads candles "
                "(on_candle), so it makes no signals and no fills; replay candle files "
                "(BASE_QUOTE-5m.csv), run live with --timeframe 5m, or give it on_trade."
            ]
        return [
            f"the market data holds only candles, and {name} only reads trades (on_trade), "
            "so it makes no signals and no fills; replay trade files or give it on_candle."
        ]
    return []


def replay_warnings(
    capital: Decimal,
    capital_given: bool,
    entry_frac: Decimal,
    plan: ReplayPlan,
    strategy: type[Strategy],
) -> list[str]:
    """Every warning for a replay run, before it starts."""
    profiles = replay_profiles(plan)
    return capital_warnings(
        capital, capital_given, plan.quote, entry_frac, profiles
    ) + strategy_warnings(strategy, {p.kind for p in profiles})


def entry_fraction(position_size_pct: Decimal, max_position_pct: Decimal) -> Decimal:
    """The share of equity one entry takes before the market has a say."""
    return min(position_size_pct, max_position_pct)
