"""Live market data from an exchange through ccxt.pro (MEXC spot and perpetuals by default).

Public API:

- `FeedSettings.from_env(symbols, market=..., ...)`: settings, base URLs from
  CLAIRE_MEXC_SPOT_REST_URL, CLAIRE_MEXC_SPOT_WS_URL, CLAIRE_MEXC_FUTURES_REST_URL,
  CLAIRE_MEXC_FUTURES_WS_URL.
- `LiveFeed(settings)`: `events()`, `warmup()`, `specs()`, `funding_rate()`, `stats`, `close()`.
- `check_exchange(settings) -> ExchangeCheck`: reachable, missing symbols, clock skew.
"""

from engine.feeds.exchange.check import ExchangeCheck, check_exchange
from engine.feeds.exchange.client import SubscriptionRefusedError
from engine.feeds.exchange.feed import FeedStats, LiveFeed
from engine.feeds.exchange.markets import FundingRate, MarketSpec
from engine.feeds.exchange.settings import FeedSettings

__all__ = [
    "ExchangeCheck",
    "FeedSettings",
    "FeedStats",
    "FundingRate",
    "LiveFeed",
    "MarketSpec",
    "SubscriptionRefusedError",
    "check_exchange",
]
