"""Building the ccxt.pro exchange, with the few hooks the feed needs.

ccxt does the protocol work (connect, subscribe, ping, parse). The hooks add:

- frame safety: a frame ccxt cannot decode or handle raised inside its receive
  callback, which silently ended the receive loop. We catch it, count it as a
  malformed frame, log it and keep receiving (`FrameStats.malformed_frames`).
- MEXC's own protobuf modules (engine.feeds.mexc_proto) instead of ccxt's copy,
  which predates the `tradeId` field of aggregated deals (MEXC 2026.6).
- refused subscriptions: MEXC answers a blocked spot channel with code 0 and a
  "Not Subscribed successfully!" text, and a futures one with `rs.error`; ccxt
  ignores both and the watch would wait forever. We reject the watch instead.
- `Retry-After` of a 429/418 answer, which ccxt drops, kept for the backoff.
- raw kline pushes, kept so candles are built from the exchange's exact strings.
- the book ticker (best bid and ask), which ccxt reads as floats or not at all:
  spot `spot@public.aggre.bookTicker.v3.api.pb@100ms@SYMBOL` (protobuf), futures
  `sub.depth.full` with limit 5 (JSON; its first level is the best bid and ask
  with their sizes, which `sub.ticker` lacks). Raw values go to the feed.
- every data message's symbol and exchange timestamp, for the feed's liveness
  and its estimate of the exchange's clock.
- channels spread over as many connections as MEXC's cap of
  `CHANNELS_PER_CONNECTION` subscriptions a connection needs: ccxt keeps one socket
  per URL, so connection k > 0 gets the URL with a `#claire-k` fragment, which a
  WebSocket client never sends. A channel keeps its connection for the life of the
  client, through reconnects, and the first 30 stay on the plain URL.

API keys are never given to the client: public market data needs none, so none
can leak into logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt.pro as ccxtpro
from ccxt.base.errors import NetworkError
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError

from engine.errors import ExchangeError
from engine.feeds.exchange.settings import FeedSettings
from engine.feeds.mexc_proto import PushDataV3ApiWrapper

log = logging.getLogger(__name__)

_BRACKETED = re.compile(r"\[(.*?)\]")


class SubscriptionRefusedError(ExchangeError):
    """The exchange answered a subscription with a refusal; retrying will not help."""


@dataclass
class FrameStats:
    malformed_frames: int = 0
    connections: dict[str, int] = field(default_factory=dict)  # url -> connects

    @property
    def reconnects(self) -> int:
        return sum(max(0, n - 1) for n in self.connections.values())


@dataclass(frozen=True, slots=True)
class RawKline:
    """One kline push as the exchange sent it (strings for spot, floats for futures)."""

    symbol_id: str
    timeframe: str
    open_ms: int
    open: object
    high: object
    low: object
    close: object
    volume: object


@dataclass(frozen=True, slots=True)
class RawBookTicker:
    """The best bid and ask as the exchange sent them (strings for spot, floats for futures).

    A side with no order is None. Futures sizes are contracts.
    """

    symbol_id: str
    time_ms: int | None  # the exchange's stamp on the message
    bid: object
    bid_qty: object
    ask: object
    ask_qty: object
    version: str | None = None  # the book's version, when the exchange sends one


SPOT_BOOK_TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms@"
CHANNELS_PER_CONNECTION = 30  # MEXC refuses a connection's 31st subscription
FUTURES_DEPTH_LEVELS = 5  # MEXC offers 5, 10 or 20; the feed needs only the first


def book_ticker_hash(ccxt_symbol: str) -> str:
    return f"claire-bookticker:{ccxt_symbol}"


class _Hooks:
    """Mixed in front of a ccxt.pro exchange class."""

    claire_stats: FrameStats
    claire_retry_after_s: float | None
    claire_rate_limited: bool
    claire_on_malformed: Callable[[str], None] | None
    claire_on_kline: Callable[[RawKline], None] | None
    claire_on_book_ticker: Callable[[RawBookTicker], None] | None
    claire_on_message: Callable[[str, int | None], None] | None

    def _claire_init(self) -> None:
        self.claire_stats = FrameStats()
        self.claire_retry_after_s = None
        self.claire_rate_limited = False
        self.claire_on_malformed = None
        self.claire_on_kline = None
        self.claire_on_book_ticker = None
        self.claire_on_message = None

    def client(self, url: str) -> Any:
        client = super().client(url)  # type: ignore[misc]
        if not getattr(client, "_claire_wrapped", False):
            original = client.handle_text_or_binary_message

            def safe(data: Any) -> None:
                try:
                    original(data)
                except Exception as exc:  # any frame we cannot use must not stop the loop
                    self._claire_malformed(url, f"{type(exc).__name__}: {exc}")

            client.handle_text_or_binary_message = safe
            client._claire_wrapped = True
        return client

    def _claire_malformed(self, url: str, why: str) -> None:
        self.claire_stats.malformed_frames += 1
        log.warning("skipped a malformed frame from %s (%s)", url, why[:200])
        if self.claire_on_malformed is not None:
            self.claire_on_malformed(url)

    def on_connected(self, client: Any, message: Any = None) -> None:
        stats = self.claire_stats.connections
        stats[client.url] = stats.get(client.url, 0) + 1
        super().on_connected(client, message)  # type: ignore[misc]

    def handle_errors(self, code: int, reason: str, url: str, method: str, *rest: Any) -> Any:
        headers = rest[0] if rest else None
        if code in (418, 429):
            # ccxt maps these to RateLimitExceeded, DDoSProtection or (from MEXC's
            # body) a plain ExchangeError; the flag lets the caller tell regardless.
            self.claire_rate_limited = True
            self.claire_retry_after_s = _retry_after(headers)
        return super().handle_errors(code, reason, url, method, *rest)  # type: ignore[misc]


class ChannelShards:
    """Which connection each channel subscribes on: the first with room for it."""

    def __init__(self, per_connection: int) -> None:
        self.per_connection = per_connection
        self.of: dict[str, int] = {}
        self.used: list[int] = []

    def url(self, base: str, channel: str) -> str:
        shard = self.of.get(channel)
        if shard is None:
            shard = next(
                (n for n, used in enumerate(self.used) if used < self.per_connection),
                len(self.used),
            )
            if shard == len(self.used):
                self.used.append(0)
            self.used[shard] += 1
            self.of[channel] = shard
        return base if shard == 0 else f"{base}#claire-{shard}"


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


class ClaireMexc(_Hooks, ccxtpro.mexc):  # type: ignore[misc]
    """ccxt.pro's MEXC with the hooks above."""

    def __init__(self, config: dict[str, Any] | None = None, market: str = "spot") -> None:
        super().__init__(config or {})
        self._claire_init()
        self.claire_market = market
        self.claire_shards = ChannelShards(CHANNELS_PER_CONNECTION)

    async def watch_spot_public(
        self, channel: str, messageHash: str, params: dict[str, Any] | None = None
    ) -> Any:
        """ccxt's, on the connection this channel is given (see `ChannelShards`)."""
        params = params or {}
        leaving = self.safe_bool(params, "unsubscribed", False)
        method = "UNSUBSCRIPTION" if leaving else "SUBSCRIPTION"
        request = {"method": method, "params": [channel]}
        request = self.extend(request, self.omit(params, ["unsubscribed"]))
        url = self.claire_shards.url(self.urls["api"]["ws"]["spot"], channel)
        return await self.watch(url, messageHash, request, messageHash)

    async def watch_swap_public(
        self,
        channel: str,
        messageHash: str,
        requestParams: dict[str, Any],
        params: dict[str, Any] | None = None,
    ) -> Any:
        """ccxt's, on the connection this channel and symbol are given."""
        message = self.extend({"method": channel, "param": requestParams}, params or {})
        key = f"{channel}:{requestParams.get('symbol', '')}"
        url = self.claire_shards.url(self.urls["api"]["ws"]["swap"], key)
        return await self.watch(url, messageHash, message, messageHash)

    async def fetch_markets(self, params: dict[str, Any] | None = None) -> list[Any]:
        # ccxt loads spot AND contract markets; the contract list weighs 100 (MEXC
        # allows it once per 5 s), so a spot feed would start 5 s in rate-limit debt.
        markets: list[Any]
        if self.claire_market == "spot":
            markets = await self.fetch_spot_markets(params or {})
        else:
            markets = await self.fetch_swap_markets(params or {})
        return markets

    def decode_proto_msg(self, data: bytes) -> dict[str, Any]:
        try:
            message = PushDataV3ApiWrapper.FromString(bytes(data))
        except DecodeError as exc:
            # Raised here, ccxt's receive loop would stop; the safe wrapper counts it.
            raise ValueError(f"undecodable protobuf frame of {len(data)} bytes") from exc
        return MessageToDict(message)

    def handle_subscription_status(self, client: Any, message: dict[str, Any]) -> Any:
        text = str(message.get("msg", ""))
        if text.startswith("Not Subscribed"):
            match = _BRACKETED.search(text)
            channels = match.group(1).split(",") if match else []
            for channel in channels:
                self._claire_refuse(client, channel.strip(), text.strip())
            return None
        return super().handle_subscription_status(client, message)

    async def claire_watch_book_ticker(self, ccxt_symbol: str) -> RawBookTicker:
        """Subscribe to the book ticker of one market; resolves with each update."""
        market = self.market(ccxt_symbol)
        message_hash = book_ticker_hash(market["symbol"])
        if market["spot"]:
            channel = SPOT_BOOK_TICKER + market["id"]
            spot: RawBookTicker = await self.watch_spot_public(channel, message_hash)
            return spot
        params = {"symbol": market["id"], "limit": FUTURES_DEPTH_LEVELS}
        swap: RawBookTicker = await self.watch_swap_public("sub.depth.full", message_hash, params)
        return swap

    def handle_protobuf_message(self, client: Any, message: dict[str, Any]) -> Any:
        symbol_id = str(message.get("symbol", ""))
        self._claire_heard(symbol_id, message.get("sendTime") or message.get("createTime"))
        if "publicAggreBookTicker" in message:
            body = message["publicAggreBookTicker"]
            self._claire_book_ticker(
                client,
                RawBookTicker(
                    symbol_id=symbol_id,
                    time_ms=_stamp(message.get("sendTime") or message.get("createTime")),
                    bid=body.get("bidPrice") or None,
                    bid_qty=body.get("bidQuantity") or None,
                    ask=body.get("askPrice") or None,
                    ask_qty=body.get("askQuantity") or None,
                    version=body.get("version") or None,
                ),
            )
            return True
        return super().handle_protobuf_message(client, message)

    def handle_message(self, client: Any, message: Any) -> Any:
        if isinstance(message, dict) and str(message.get("channel", "")).startswith("push."):
            symbol_id = str(message.get("symbol", ""))
            self._claire_heard(symbol_id, message.get("ts"))
            if message["channel"] == "push.depth.full":
                self._claire_book_ticker(client, futures_depth_top(symbol_id, message))
                return None
        if isinstance(message, dict) and message.get("channel") == "rs.error":
            # A futures refusal names no channel: fail every pending watch on this socket.
            reason = str(message.get("data", "refused"))
            for message_hash in list(client.futures):
                client.subscriptions.pop(message_hash, None)
                error = SubscriptionRefusedError(
                    f"MEXC refused the futures subscription {message_hash}: {reason}"
                )
                client.reject(error, message_hash)
            return None
        return super().handle_message(client, message)

    def handle_ohlcv(self, client: Any, message: dict[str, Any]) -> Any:
        if self.claire_on_kline is not None:
            raw = _raw_kline(self, message)
            if raw is not None:
                self.claire_on_kline(raw)
        return super().handle_ohlcv(client, message)

    def _claire_heard(self, symbol_id: str, stamp: object) -> None:
        if self.claire_on_message is not None and symbol_id:
            self.claire_on_message(symbol_id, _stamp(stamp))

    def _claire_book_ticker(self, client: Any, raw: RawBookTicker) -> None:
        if self.claire_on_book_ticker is not None:
            self.claire_on_book_ticker(raw)
        market = self.safe_market(raw.symbol_id)
        client.resolve(raw, book_ticker_hash(market["symbol"]))

    def _claire_refuse(self, client: Any, channel: str, text: str) -> None:
        message_hash = self._claire_hash_for(channel)
        error = SubscriptionRefusedError(f"MEXC refused the subscription to {channel}: {text}")
        if message_hash is None:
            client.reject(error)
            return
        client.subscriptions.pop(message_hash, None)
        client.reject(error, message_hash)

    def _claire_hash_for(self, channel: str) -> str | None:
        """Map a spot channel back to the ccxt message hash its watch waits on."""
        parts = channel.split("@")
        try:
            if parts[1] == "public.aggre.deals.v3.api.pb":
                symbol: str = self.safe_market(parts[3])["symbol"]
                return "trades:" + symbol
            if parts[1] == "public.aggre.bookTicker.v3.api.pb":
                return book_ticker_hash(self.safe_market(parts[3])["symbol"])
            if parts[1] == "public.kline.v3.api.pb":
                timeframe = self.find_timeframe(parts[3], self.options["timeframes"])
                return f"candles:{self.safe_market(parts[2])['symbol']}:{timeframe}"
        except (IndexError, KeyError):
            return None
        return None


def _raw_kline(exchange: Any, message: dict[str, Any]) -> RawKline | None:
    timeframes = exchange.options["timeframes"]
    if "publicSpotKline" in message:
        k = message["publicSpotKline"]
        return RawKline(
            symbol_id=str(message.get("symbol", "")),
            timeframe=exchange.find_timeframe(k.get("interval"), timeframes),
            open_ms=int(k.get("windowStart", 0)) * 1000,
            open=k.get("openingPrice"),
            high=k.get("highestPrice"),
            low=k.get("lowestPrice"),
            close=k.get("closingPrice"),
            volume=k.get("volume", "0"),
        )
    data = message.get("data")
    if message.get("channel") == "push.kline" and isinstance(data, dict):
        return RawKline(
            symbol_id=str(data.get("symbol") or message.get("symbol", "")),
            timeframe=exchange.find_timeframe(data.get("interval"), timeframes),
            open_ms=int(data.get("t", 0)) * 1000,
            open=data.get("o"),
            high=data.get("h"),
            low=data.get("l"),
            close=data.get("c"),
            volume=data.get("q", 0),  # contracts; the feed multiplies by contract size
        )
    return None


def _stamp(value: object) -> int | None:
    """An exchange timestamp in ms (int64 fields arrive as text from protobuf), or None."""
    try:
        stamp = int(str(value))
    except (TypeError, ValueError):
        return None
    return stamp if stamp > 0 else None


def futures_depth_top(symbol_id: str, message: dict[str, Any]) -> RawBookTicker:
    """The best level of each side of `push.depth.full` (levels are [price, contracts,
    orders]; MEXC lists the best first, the highest bid and lowest ask are taken anyway)."""
    data = message.get("data")
    data = data if isinstance(data, dict) else {}

    def best(levels: object, pick: Callable[..., Any]) -> tuple[object, object]:
        rows = (
            [r for r in levels if isinstance(r, list) and len(r) >= 2]
            if isinstance(levels, list)
            else []
        )
        if not rows:
            return None, None
        try:
            row = pick(rows, key=lambda r: float(r[0]))
        except (TypeError, ValueError):
            row = rows[0]  # unreadable prices: let the feed's exact parser refuse it
        return row[0], row[1]

    bid, bid_qty = best(data.get("bids"), max)
    ask, ask_qty = best(data.get("asks"), min)
    version = data.get("version")
    return RawBookTicker(
        symbol_id,
        _stamp(message.get("ts")),
        bid,
        bid_qty,
        ask,
        ask_qty,
        None if version is None else str(version),
    )


def build_exchange(settings: FeedSettings) -> Any:
    """A ccxt.pro client for `settings.exchange` with MEXC URLs taken from the settings."""
    config: dict[str, Any] = {
        "enableRateLimit": True,  # ccxt's token bucket, with MEXC's endpoint weights
        "rateLimit": settings.rest_rate_limit_ms,
        "timeout": settings.rest_timeout_ms,
        "streaming": {"keepAlive": settings.keepalive_ms},
        "options": {"defaultType": "swap" if settings.market == "futures" else "spot"},
    }
    if settings.is_mexc:
        exchange = ClaireMexc(config, settings.market)
        _point_mexc_at(exchange, settings)
        return exchange
    base = getattr(ccxtpro, settings.exchange, None)
    if base is None:
        raise ExchangeError(
            f"exchange {settings.exchange!r} is not supported by ccxt.pro; use a ccxt exchange id"
        )
    cls = type(f"Claire_{settings.exchange}", (_Hooks, base), {})
    exchange = cls(config)
    exchange._claire_init()
    return exchange


def _point_mexc_at(exchange: Any, settings: FeedSettings) -> None:
    """Override ccxt's MEXC base URLs (the futures REST key is `contract`, not `swap`)."""
    api = exchange.urls["api"]
    spot, futures = settings.spot_rest_url.rstrip("/"), settings.futures_rest_url.rstrip("/")
    api["spot"]["public"] = spot
    api["spot"]["private"] = spot
    api["contract"]["public"] = futures + "/api/v1/contract"
    api["contract"]["private"] = futures + "/api/v1/private"
    api["ws"]["spot"] = settings.spot_ws_url
    api["ws"]["swap"] = settings.futures_ws_url


def force_reconnect(exchange: Any, url: str, why: str) -> bool:
    """Fail the socket at `url` so every watch on it raises and resubscribes."""
    client = (exchange.clients or {}).get(url)
    if client is None:
        return False
    client.on_error(NetworkError(why))
    return True
