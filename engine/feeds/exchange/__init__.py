"""Live market data from an exchange through ccxt.pro (MEXC spot and perpetuals by default).

Public API:

- `FeedSettings.from_env(symbols, market=..., ...)`: settings, base URLs from
  CLAIRE_MEXC_SPOT_REST_URL, CLAIRE_MEXC_SPOT_WS_URL, CLAIRE_MEXC_FUTURES_REST_URL,
  CLAIRE_MEXC_FUTURES_WS_URL.
- `LiveFeed(settings)`: `events()` (trades, candles, quotes, heartbeats and alerts),
  `warmup()`, `specs()`, `funding_rate()`, `stats`, `exchange_now_ms()`, `close()`.
- `check_exchange(settings) -> ExchangeCheck`: reachable, missing symbols, clock skew.
"""

from engine.feeds.exchange.check import ExchangeCheck, check_exchange
from engine.feeds.exchange.client import SubscriptionRefusedError
from engine.feeds.exchange.feed import FeedEvent, FeedStats, LiveFeed, LiveMarketEvent
from engine.feeds.exchange.markets import FundingRate, MarketSpec
from engine.feeds.exchange.settings import FeedSettings

__all__ = [
    "ExchangeCheck",
    "FeedEvent",
    "FeedSettings",
    "FeedStats",
    "FundingRate",
    "LiveFeed",
    "LiveMarketEvent",
    "MarketSpec",
    "SubscriptionRefusedError",
    "check_exchange",
]
