# ruff: noqa: UP031 -- hand-built JSON reads better with %s than with doubled braces
"""A local server that speaks MEXC's public market-data protocol, for tests.

One aiohttp app on 127.0.0.1 with an ephemeral port serves all four MEXC bases:

- spot REST    `/api/v3/...`            (ping, time, exchangeInfo, klines, depth, trades, aggTrades)
- spot WS      `/ws`                    (JSON control frames, binary protobuf pushes:
                                         deals, klines, the aggregated book ticker)
- futures REST `/api/v1/contract/...`   (ping, detail, funding_rate, kline, deals)
- futures WS   `/edge`                  (JSON: sub.deal / sub.kline / sub.depth.full,
                                         push.*, ping/pong)

The recorded trades of ../shared/data are played as XRPETH (spot) and XRP_USDT
(perpetual); the 5-minute candles as ETHBTC and LTCBTC (spot) and the 1-hour
XRP_USDT candles as the perpetual's klines. With `server.quotes` on, every batch
of trades is followed by the book it leaves (tapes.book_after) on the book-ticker
channels. Every message and the REST server time come from one clock that
follows the data played (clock.py). Faults are switched on through `server.faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import WSMsgType, web

from engine.feeds.mexc_proto import PushDataV3ApiWrapper
from tests.mexc_server.clock import TapeClock
from tests.mexc_server.data import TapeCandle, TapeTrade, load_candles, load_funding, load_trades
from tests.mexc_server.tapes import (
    BOOK_SPREAD_TICKS,
    BOOK_TICK,
    CandleTape,
    TapeBook,
    TradeTape,
    book_after,
)

# The exact strings MEXC sends; note the full-width colon and code 0 on refusal.
BLOCKED_TEMPLATE = "Not Subscribed successfully! [{channels}].  Reason： Blocked! "
CONTRACT_MISSING = "Contract doesn't exist!"

SPOT_TRADES = re.compile(r"^spot@public\.aggre\.deals\.v3\.api\.pb@(100ms|10ms)@([A-Z0-9]+)$")
SPOT_KLINE = re.compile(r"^spot@public\.kline\.v3\.api\.pb@([A-Z0-9]+)@(\w+)$")
SPOT_BOOK = re.compile(r"^spot@public\.aggre\.bookTicker\.v3\.api\.pb@(100ms|10ms)@([A-Z0-9]+)$")
FUTURES_METHODS = ("sub.deal", "sub.kline", "sub.depth.full")
SPOT_REST_INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600, "4h": 14400}
WS_INTERVALS = {"Min1": 60, "Min5": 300, "Min15": 900, "Min30": 1800, "Min60": 3600, "Hour4": 14400}

# name -> (base, quote, base precision, quote precision)
SPOT_SYMBOLS = {
    "XRPETH": ("XRP", "ETH", 1, 8),
    "ETHBTC": ("ETH", "BTC", 4, 8),
    "LTCBTC": ("LTC", "BTC", 3, 8),
    "BTCUSDT": ("BTC", "USDT", 6, 2),
    "ETHUSDT": ("ETH", "USDT", 5, 2),
}
CONTRACTS = {
    # values as MEXC's contract/detail sends them (JSON numbers)
    "XRP_USDT": {
        "baseCoin": "XRP", "contractSize": 1, "priceUnit": 0.0001, "priceScale": 4,
        "volUnit": 1, "volScale": 0, "minVol": 1, "maxVol": 1000000, "makerFeeRate": 0,
        "takerFeeRate": 0.0002, "maintenanceMarginRate": 0.005, "initialMarginRate": 0.01,
    },
    "BTC_USDT": {
        "baseCoin": "BTC", "contractSize": 0.0001, "priceUnit": 0.1, "priceScale": 1,
        "volUnit": 1, "volScale": 0, "minVol": 1, "maxVol": 5000000, "makerFeeRate": 0,
        "takerFeeRate": 0.0002, "maintenanceMarginRate": 0.004, "initialMarginRate": 0.008,
    },
}  # fmt: skip


@dataclass
class Faults:
    """Switches tests flip; each one-shot counter counts down as it fires."""

    silent: bool = False  # keep sockets open and answer pings, but push nothing
    malformed_next: int = 0  # replace the next N pushes with undecodable frames
    skip_next_trades: int = 0  # do not push the next N trades (REST still has them)
    skip_next_candle_pushes: int = 0  # do not push the next N kline pushes
    rate_limit_next: int = 0  # answer the next N REST calls with 429/418
    rate_limit_status: int = 429
    retry_after_s: int = 1
    refuse: set[str] = field(default_factory=set)  # refuse channels/symbols containing these
    overlap_on_subscribe: int = 0  # re-send the last N trades on every (re)subscription
    clock_offset_ms: int = 0  # added to the server time the REST API reports
    crossed_book_next: int = 0  # the next N book tickers have the bid above the ask
    muted_klines: set[str] = field(default_factory=set)  # push no klines of these symbols
    garbled_book_next: int = 0  # the next N book tickers carry a bid that is not a number


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    futures: bool
    trades: set[str] = field(default_factory=set)  # tape keys
    klines: set[tuple[str, str]] = field(default_factory=set)
    books: set[str] = field(default_factory=set)  # book-ticker subscriptions (tape keys)
    channels: dict[str, str] = field(default_factory=dict)  # tape key -> spot channel name
    book_channels: dict[str, str] = field(default_factory=dict)

    @property
    def subscribed(self) -> int:
        return len(self.trades) + len(self.klines) + len(self.books)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    at: float  # time.monotonic()
    path: str
    status: int


class MexcServer:
    """Start with `await server.start()`; URLs are available afterwards."""

    def __init__(
        self,
        *,
        tick_s: float = 0.02,
        trades_per_tick: int = 5,
        trade_limit: int | None = 300,
        candle_limit: int | None = 80,
        candle_history: int = 50,
    ) -> None:
        self.tick_s = tick_s
        self.trades_per_tick = trades_per_tick
        self.faults = Faults()
        self.clock = TapeClock()
        self.quotes = False  # push the book left by each batch of trades
        self.max_subscriptions = 30  # spot channels per connection, as MEXC allows
        self.book_version = 0
        trades = load_trades()
        self.spot_trades = {"XRPETH": TradeTape(trades, limit=trade_limit)}
        self.futures_trades = {"XRP_USDT": TradeTape(trades, limit=trade_limit)}
        self.spot_klines = {
            (symbol, "Min5"): CandleTape(
                load_candles(f"market/{base}_BTC-5m.csv"), 300, candle_history, candle_limit
            )
            for symbol, base in (("ETHBTC", "ETH"), ("LTCBTC", "LTC"))
        }
        self.futures_klines = {
            ("XRP_USDT", "Min60"): CandleTape(
                load_candles("market/futures/XRP_USDT-1h.csv"), 3600, candle_history, candle_limit
            )
        }
        self.funding = load_funding()
        self.requests: list[RequestRecord] = []
        self.subscriptions: list[str] = []  # every accepted subscription, in order
        self.last_kline_sent: dict[tuple[str, str], TapeCandle] = {}
        self.connections_total = 0
        self._conns: list[_Conn] = []
        self._runner: web.AppRunner | None = None
        self._player: asyncio.Task[None] | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> MexcServer:
        app = web.Application(middlewares=[self._rate_limit_middleware])
        app.router.add_get("/ws", self._spot_ws)
        app.router.add_get("/edge", self._futures_ws)
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/api/v3/trades", self._trades)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v1/contract/ping", self._contract_ping)
        app.router.add_get("/api/v1/contract/detail", self._contract_detail)
        app.router.add_get("/api/v1/contract/funding_rate/{symbol}", self._funding_rate)
        app.router.add_get("/api/v1/contract/kline/{symbol}", self._contract_kline)
        app.router.add_get("/api/v1/contract/deals/{symbol}", self._contract_deals)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._player = asyncio.create_task(self._play())
        return self

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        for conn in list(self._conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spot_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def futures_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/edge"

    def env(self) -> dict[str, str]:
        """The environment that points the feed at this server."""
        return {
            "CLAIRE_MEXC_SPOT_REST_URL": self.rest_url,
            "CLAIRE_MEXC_SPOT_WS_URL": self.spot_ws_url,
            "CLAIRE_MEXC_FUTURES_REST_URL": self.rest_url,
            "CLAIRE_MEXC_FUTURES_WS_URL": self.futures_ws_url,
        }

    # --- fault controls ----------------------------------------------------------

    async def drop_connections(self) -> int:
        """Close every WebSocket now, as a network blip would; returns how many."""
        conns, self._conns = list(self._conns), []
        for conn in conns:
            # Abort the TCP connection without a closing handshake, as a network
            # failure would; a polite close() would wait for the client's reply.
            transport = conn.ws._req.transport if conn.ws._req is not None else None
            if transport is not None:
                transport.abort()
        return len(conns)

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    def candles_from(self, start_ms: int) -> None:
        """Move the spot candle tapes in time so their first live window opens at the
        first window boundary from `start_ms` (the history before it moves along): a
        live run's market days then begin when the run does. Before `start()`."""
        for key, tape in self.spot_klines.items():
            step = tape.interval_s * 1000
            first = tape.records[min(tape.history, len(tape.records) - 1)].open_time_ms
            shift = -(-(start_ms - first) // step) * step  # whole windows, never earlier
            tape.records = tuple(
                replace(c, open_time_ms=c.open_time_ms + shift) for c in tape.records
            )
            self.spot_klines[key] = tape

    # --- playing the tapes ---------------------------------------------------------

    async def _play(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            for symbol, tape in self.spot_trades.items():
                new = tape.advance(self.trades_per_tick)
                if new:
                    self.clock.reach(new[-1].time_ms)
                    await self._push_trades(symbol, new, futures=False)
            for symbol, tape in self.futures_trades.items():
                new = tape.advance(self.trades_per_tick)
                if new:
                    self.clock.reach(new[-1].time_ms)
                    await self._push_trades(symbol, new, futures=True)
            for futures, ktapes in ((False, self.spot_klines), (True, self.futures_klines)):
                for key, ktape in ktapes.items():
                    step = ktape.advance()
                    if step is None:
                        continue
                    candle, final = step
                    # A window's first push comes as it opens, its last just before it ends.
                    last_ms = candle.open_time_ms + ktape.interval_s * 1000 - 1
                    self.clock.reach(last_ms if final else candle.open_time_ms)
                    await self.push_kline(key, candle, futures=futures)

    def _take_skipped(self, items: tuple[TapeTrade, ...]) -> tuple[TapeTrade, ...]:
        skip = min(self.faults.skip_next_trades, len(items))
        self.faults.skip_next_trades -= skip
        return items[skip:]

    async def _push_trades(
        self, symbol: str, trades: tuple[TapeTrade, ...], *, futures: bool
    ) -> None:
        trades = self._take_skipped(trades)
        if not trades or self.faults.silent:
            return
        for conn in list(self._conns):
            if conn.futures == futures and symbol in conn.trades:
                await self._send_trades(conn, symbol, trades)
        if self.quotes:
            book = self._next_book(book_after(trades[-1]))
            for conn in list(self._conns):
                if conn.futures == futures and symbol in conn.books:
                    await self._send_book(conn, symbol, book)

    async def _send_trades(self, conn: _Conn, symbol: str, trades: tuple[TapeTrade, ...]) -> None:
        if await self._send_malformed(conn):
            return
        now = self.clock.now_ms()
        if conn.futures:
            await self._send(conn, _futures_deals_frame(symbol, trades, now))
        else:
            await self._send(conn, _spot_deals_frame(conn.channels[symbol], symbol, trades, now))

    def _next_book(self, book: TapeBook) -> TapeBook:
        """The book as sent, after the book faults had their turn."""
        self.book_version += 1
        if self.faults.crossed_book_next > 0:
            self.faults.crossed_book_next -= 1
            return TapeBook(book.ask, book.ask_qty, book.bid, book.bid_qty)
        if self.faults.garbled_book_next > 0:
            self.faults.garbled_book_next -= 1
            return TapeBook("not-a-price", book.bid_qty, book.ask, book.ask_qty)
        return book

    async def _send_book(self, conn: _Conn, symbol: str, book: TapeBook) -> None:
        now, version = self.clock.now_ms(), self.book_version
        if conn.futures:
            await self._send(conn, _futures_depth_frame(symbol, book, version, now))
        else:
            channel = conn.book_channels[symbol]
            await self._send(conn, _spot_book_frame(channel, symbol, book, version, now))

    async def push_kline(self, key: tuple[str, str], candle: TapeCandle, *, futures: bool) -> None:
        """Send a kline push for `key` to its subscribers now (the tapes call this too)."""
        targets = [c for c in self._conns if c.futures == futures and key in c.klines]
        if not targets or self.faults.silent or key[0] in self.faults.muted_klines:
            return
        if self.faults.skip_next_candle_pushes > 0:
            self.faults.skip_next_candle_pushes -= 1
            return
        interval_s = WS_INTERVALS[key[1]]
        for conn in targets:
            if await self._send_malformed(conn):
                continue
            now = self.clock.now_ms()
            if futures:
                frame: str | bytes = _futures_kline_frame(key[0], key[1], candle, now)
            else:
                channel = f"spot@public.kline.v3.api.pb@{key[0]}@{key[1]}"
                frame = _spot_kline_frame(channel, key[0], key[1], candle, interval_s, now)
            await self._send(conn, frame)
            self.last_kline_sent[key] = candle

    async def _send_malformed(self, conn: _Conn) -> bool:
        if self.faults.malformed_next <= 0:
            return False
        self.faults.malformed_next -= 1
        # Spot: bytes that are not a protobuf message (a truncated length-delimited
        # field); futures: a text frame that starts like JSON but is not.
        await self._send(
            conn, '{"channel":"push.deal","data":[{' if conn.futures else b"\x0a\xff\x01"
        )
        return True

    async def _send(self, conn: _Conn, frame: str | bytes) -> None:
        try:
            if isinstance(frame, bytes):
                await conn.ws.send_bytes(frame)
            else:
                await conn.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            self._forget(conn)

    def _forget(self, conn: _Conn) -> None:
        if conn in self._conns:
            self._conns.remove(conn)

    # --- spot WebSocket ---------------------------------------------------------------

    async def _spot_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, futures=False)
        self._conns.append(conn)
        self.connections_total += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(msg.data)
                except ValueError:
                    continue
                await self._spot_control(conn, body)
        finally:
            self._forget(conn)
        return ws

    async def _spot_control(self, conn: _Conn, body: dict[str, Any]) -> None:
        method = str(body.get("method", "")).upper()
        msg_id = body.get("id", 0)
        if method == "PING":
            await conn.ws.send_str(json.dumps({"id": 0, "code": 0, "msg": "PONG"}))
            return
        if method not in ("SUBSCRIPTION", "UNSUBSCRIPTION"):
            return
        channels = [str(c) for c in body.get("params", [])]
        parsed = [self._spot_channel(c) for c in channels]
        if method == "SUBSCRIPTION" and (
            any(p is None for p in parsed) or conn.subscribed + len(parsed) > self.max_subscriptions
        ):
            blocked = BLOCKED_TEMPLATE.format(channels=",".join(channels))
            await conn.ws.send_str(json.dumps({"id": msg_id, "code": 0, "msg": blocked}))
            return
        for channel, target in zip(channels, parsed, strict=True):
            if target is None:
                continue
            kind, key = target
            if method == "UNSUBSCRIPTION":
                if kind == "trades":
                    conn.trades.discard(key[0])
                elif kind == "book":
                    conn.books.discard(key[0])
                else:
                    conn.klines.discard(key)
                continue
            self.subscriptions.append(channel)
            if kind == "trades":
                conn.trades.add(key[0])
                conn.channels[key[0]] = channel
            elif kind == "book":
                conn.books.add(key[0])
                conn.book_channels[key[0]] = channel
            else:
                conn.klines.add(key)
        await conn.ws.send_str(json.dumps({"id": msg_id, "code": 0, "msg": ",".join(channels)}))
        if method == "SUBSCRIPTION":
            for target in parsed:
                if target is not None:
                    await self._on_subscribed(conn, *target)

    def _spot_channel(self, channel: str) -> tuple[str, tuple[str, str]] | None:
        if any(bad in channel for bad in self.faults.refuse):
            return None
        if match := SPOT_TRADES.match(channel):
            symbol = match.group(2)
            return ("trades", (symbol, "")) if symbol in SPOT_SYMBOLS else None
        if match := SPOT_KLINE.match(channel):
            symbol, interval = match.groups()
            ok = symbol in SPOT_SYMBOLS and interval in WS_INTERVALS
            return ("kline", (symbol, interval)) if ok else None
        if match := SPOT_BOOK.match(channel):
            symbol = match.group(2)
            return ("book", (symbol, "")) if symbol in SPOT_SYMBOLS else None
        return None  # unknown, JSON-era (non-.pb) or malformed channel: "Blocked"

    async def _on_subscribed(self, conn: _Conn, kind: str, key: tuple[str, str]) -> None:
        """Start the tape on first interest; optionally re-send recent trades."""
        if kind in ("trades", "book"):  # the book is derived from the trades
            tapes = self.futures_trades if conn.futures else self.spot_trades
            tape = tapes.get(key[0])
            if tape is None:
                return
            tape.started = True
            if kind == "book":
                return
            overlap = self.faults.overlap_on_subscribe
            if overlap and tape.cursor and not self.faults.silent:
                await self._send_trades(conn, key[0], tape.released[-overlap:])
        elif kind == "kline":
            # One exchange, one clock: every candle tape of the market starts together.
            ktapes = self.futures_klines if conn.futures else self.spot_klines
            if key in ktapes:
                for ktape in ktapes.values():
                    ktape.started = True

    # --- futures WebSocket --------------------------------------------------------------

    async def _futures_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, futures=True)
        self._conns.append(conn)
        self.connections_total += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(msg.data)
                except ValueError:
                    continue
                await self._futures_control(conn, body)
        finally:
            self._forget(conn)
        return ws

    async def _futures_control(self, conn: _Conn, body: dict[str, Any]) -> None:
        method = str(body.get("method", ""))
        param = body.get("param") or {}
        now = self.clock.now_ms()
        if method == "ping":
            await conn.ws.send_str(json.dumps({"channel": "pong", "data": now}))
            return
        if method == "usub.depth.full":  # MEXC's own spelling of the unsubscription
            method = "unsub.depth.full"
        unsubscribe = method.startswith("unsub.") and "sub." + method[6:] in FUTURES_METHODS
        if method not in FUTURES_METHODS and not unsubscribe:
            return
        symbol = str(param.get("symbol", ""))
        refused = any(bad in symbol or bad in method for bad in self.faults.refuse)
        if symbol not in CONTRACTS or refused:
            reply = {"channel": "rs.error", "data": CONTRACT_MISSING, "ts": now}
            await conn.ws.send_str(json.dumps(reply))
            return
        key = (symbol, str(param.get("interval", "Min1")))
        if unsubscribe:
            if method == "unsub.deal":
                conn.trades.discard(symbol)
            elif method == "unsub.depth.full":
                conn.books.discard(symbol)
            else:
                conn.klines.discard(key)
        elif method == "sub.deal":
            conn.trades.add(symbol)
        elif method == "sub.depth.full":
            conn.books.add(symbol)
        else:
            conn.klines.add(key)
        self.subscriptions.append(f"{method}:{symbol}")
        await conn.ws.send_str(
            json.dumps({"channel": f"rs.{method}", "data": "success", "ts": now})
        )
        if method == "sub.deal":
            await self._on_subscribed(conn, "trades", (symbol, ""))
        elif method == "sub.depth.full":
            await self._on_subscribed(conn, "book", (symbol, ""))
        elif method == "sub.kline":
            await self._on_subscribed(conn, "kline", key)

    # --- REST ---------------------------------------------------------------------------

    @web.middleware
    async def _rate_limit_middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        is_ws = request.path in ("/ws", "/edge")
        if not is_ws and self.faults.rate_limit_next > 0:
            self.faults.rate_limit_next -= 1
            status = self.faults.rate_limit_status
            futures = request.path.startswith("/api/v1/contract")
            body = (
                {"success": False, "code": 510, "message": "Excessive frequency of requests"}
                if futures
                else {"code": status, "msg": "Too Many Requests"}
            )
            self.requests.append(RequestRecord(time.monotonic(), request.path, status))
            return web.json_response(
                body, status=status, headers={"Retry-After": str(self.faults.retry_after_s)}
            )
        response: web.StreamResponse = await handler(request)
        if not is_ws:
            self.requests.append(RequestRecord(time.monotonic(), request.path, response.status))
        return response

    def _server_time(self) -> int:
        return self.clock.now_ms() + self.faults.clock_offset_ms

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self._server_time()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        wanted = request.query.get("symbols") or request.query.get("symbol")
        names = wanted.split(",") if wanted else list(SPOT_SYMBOLS)
        symbols = [_spot_symbol_info(n) for n in names if n in SPOT_SYMBOLS]
        if wanted and not symbols:
            return _spot_error(-1121, "Invalid symbol.")
        body = {
            "timezone": "CST",
            "serverTime": self._server_time(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }
        return web.json_response(body)

    async def _klines(self, request: web.Request) -> web.Response:
        q = request.query
        symbol, interval = q.get("symbol", ""), q.get("interval", "")
        if interval not in SPOT_REST_INTERVALS:
            return _spot_error(-1121, "Invalid interval.")
        ws_interval = next(k for k, v in WS_INTERVALS.items() if v == SPOT_REST_INTERVALS[interval])
        tape = self.spot_klines.get((symbol, ws_interval))
        if tape is None:
            return _spot_error(-1121, "Invalid symbol.")
        rows = _window(tape.released, q, "startTime", "endTime", 1000, 500, 1)
        step = tape.interval_s * 1000
        body = [
            [c.open_time_ms, c.open, c.high, c.low, c.close, c.volume, c.open_time_ms + step, "0"]
            for c in rows
        ]
        return web.json_response(body)

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        if symbol not in SPOT_SYMBOLS:
            return _spot_error(-1121, "Invalid symbol.")
        tape = self.spot_trades.get(symbol)
        mid = tape.released[-1].price if tape and tape.cursor else "1"
        return web.json_response(
            {"lastUpdateId": 1, "bids": [[mid, "100"]], "asks": [[mid, "100"]]}
        )

    def _spot_trade_tape(self, request: web.Request) -> TradeTape | web.Response:
        symbol = request.query.get("symbol", "")
        tape = self.spot_trades.get(symbol)
        if tape is None:
            return _spot_error(-1121, "Invalid symbol.")
        return tape

    async def _trades(self, request: web.Request) -> web.Response:
        tape = self._spot_trade_tape(request)
        if isinstance(tape, web.Response):
            return tape
        limit = min(int(request.query.get("limit", "500")), 1000)
        rows = tape.released[-limit:]
        return web.json_response([_spot_rest_trade(t) for t in rows])

    async def _agg_trades(self, request: web.Request) -> web.Response:
        tape = self._spot_trade_tape(request)
        if isinstance(tape, web.Response):
            return tape
        q = request.query
        if ("startTime" in q) != ("endTime" in q):
            return _spot_error(-1102, "startTime and endTime must be sent together.")
        rows = _window_trades(tape.released, q)
        body = [
            {"a": t.trade_id, "f": t.trade_id, "l": t.trade_id, "p": t.price, "q": t.amount,
             "T": t.time_ms, "m": t.side == "sell", "M": True}
            for t in rows
        ]  # fmt: skip
        return web.json_response(body)

    async def _contract_ping(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "code": 0, "data": self._server_time()})

    async def _contract_detail(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if symbol:
            if symbol not in CONTRACTS:
                return _futures_error(1001, CONTRACT_MISSING)
            return web.json_response({"success": True, "code": 0, "data": _contract(symbol)})
        data = [_contract(s) for s in CONTRACTS]
        return web.json_response({"success": True, "code": 0, "data": data})

    async def _funding_rate(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        if symbol not in CONTRACTS:
            return _futures_error(1001, CONTRACT_MISSING)
        last = self.funding[-1]
        # Raw JSON text so the CSV's digits reach the wire unchanged.
        text = (
            '{"success":true,"code":0,"data":{"symbol":"%s","fundingRate":%s,'
            '"maxFundingRate":0.003,"minFundingRate":-0.003,"collectCycle":8,'
            '"nextSettleTime":%d,"timestamp":%d}}'
        ) % (symbol, last.rate, last.time_ms + 8 * 3600 * 1000, self._server_time())
        return web.Response(text=text, content_type="application/json")

    async def _contract_kline(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        interval = request.query.get("interval", "Min1")
        tape = self.futures_klines.get((symbol, interval))
        if tape is None:
            return _futures_error(1001, CONTRACT_MISSING)
        rows = _window(tape.released, request.query, "start", "end", 2000, 2000, 1000)
        columns = {
            "time": [str(c.open_time_ms // 1000) for c in rows],
            "open": [c.open for c in rows],
            "close": [c.close for c in rows],
            "high": [c.high for c in rows],
            "low": [c.low for c in rows],
            "vol": [c.volume for c in rows],
            "amount": ["0" for _ in rows],
        }
        data = ",".join(f'"{k}":[{",".join(v)}]' for k, v in columns.items())
        text = '{"success":true,"code":0,"data":{%s}}' % data
        return web.Response(text=text, content_type="application/json")

    async def _contract_deals(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        tape = self.futures_trades.get(symbol)
        if tape is None:
            return _futures_error(1001, CONTRACT_MISSING)
        limit = min(int(request.query.get("limit", "100")), 100)
        rows = tape.released[-limit:]
        # MEXC lists the newest first.
        text = '{"success":true,"code":0,"data":[%s]}' % ",".join(
            _futures_deal(t) for t in reversed(rows)
        )
        return web.Response(text=text, content_type="application/json")


# --- encoding helpers ------------------------------------------------------------------


def _spot_error(code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg, "_extend": None}, status=400)


def _futures_error(code: int, message: str) -> web.Response:
    return web.json_response({"success": False, "code": code, "message": message})


def _spot_symbol_info(name: str) -> dict[str, Any]:
    base, quote, base_precision, quote_precision = SPOT_SYMBOLS[name]
    return {
        "symbol": name, "status": "1", "baseAsset": base, "baseAssetPrecision": base_precision,
        "quoteAsset": quote, "quotePrecision": quote_precision,
        "quoteAssetPrecision": quote_precision, "baseCommissionPrecision": base_precision,
        "quoteCommissionPrecision": quote_precision,
        "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "quoteAmountPrecision": "0.0001", "baseSizePrecision": "0.1", "permissions": ["SPOT"],
        "filters": [{"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
                     "askMultiplierDown": "0.2"}],
        "maxQuoteAmount": "2000000", "makerCommission": "0", "takerCommission": "0.0005",
        "quoteAmountPrecisionMarket": "1", "maxQuoteAmountMarket": "100000", "fullName": base,
        "tradeSideType": 1, "st": False,
    }  # fmt: skip


def _contract(symbol: str) -> dict[str, Any]:
    spec = CONTRACTS[symbol]
    return {
        "symbol": symbol, "displayName": f"{symbol} SWAP", "displayNameEn": f"{symbol} SWAP",
        "positionOpenType": 3, "quoteCoin": "USDT", "settleCoin": "USDT", "minLeverage": 1,
        "maxLeverage": 100, "amountScale": 4, "bidLimitPriceRate": 0.03,
        "askLimitPriceRate": 0.03, "riskBaseVol": 150000, "riskIncrVol": 150000,
        "riskIncrMmr": 0.004, "riskIncrImr": 0.004, "riskLevelLimit": 5,
        "priceCoefficientVariation": 0.05, "indexOrigin": ["BINANCE"], "state": 0,
        "isNew": False, "isHot": True, "isHidden": False, "riskLimitType": "BY_VOLUME",
        "apiAllowed": False, **spec,
    }  # fmt: skip


def _spot_rest_trade(t: TapeTrade) -> dict[str, Any]:
    return {"id": t.trade_id, "price": t.price, "qty": t.amount, "quoteQty": "0",
            "time": t.time_ms, "isBuyerMaker": t.side == "sell", "isBestMatch": True}  # fmt: skip


def _futures_deal(t: TapeTrade) -> str:
    # Numbers go out as the CSV's digits; XRP_USDT's contract size is 1, so the
    # amount in XRP is the volume in contracts.
    side = 1 if t.side == "buy" else 2
    return '{"p":%s,"v":%s,"T":%d,"O":3,"M":2,"t":%d}' % (t.price, t.amount, side, t.time_ms)


def _spot_deals_frame(
    channel: str, symbol: str, trades: tuple[TapeTrade, ...], now_ms: int
) -> bytes:
    wrapper = PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=now_ms)
    wrapper.publicAggreDeals.eventType = channel.rsplit("@", 1)[0]
    for t in trades:
        wrapper.publicAggreDeals.deals.add(
            price=t.price,
            quantity=t.amount,
            tradeType=1 if t.side == "buy" else 2,
            time=t.time_ms,
            tradeId=str(t.trade_id),
        )
    return wrapper.SerializeToString()


def _futures_deals_frame(symbol: str, trades: tuple[TapeTrade, ...], now_ms: int) -> str:
    deals = ",".join(_futures_deal(t) for t in trades)
    return '{"channel":"push.deal","data":[%s],"symbol":"%s","ts":%d}' % (deals, symbol, now_ms)


def _spot_book_frame(channel: str, symbol: str, book: TapeBook, version: int, now_ms: int) -> bytes:
    wrapper = PushDataV3ApiWrapper(channel=channel, symbol=symbol, sendTime=now_ms)
    body = wrapper.publicAggreBookTicker
    body.bidPrice, body.bidQuantity = book.bid, book.bid_qty
    body.askPrice, body.askQuantity = book.ask, book.ask_qty
    body.version = str(version)
    return wrapper.SerializeToString()


def _futures_depth_frame(symbol: str, book: TapeBook, version: int, now_ms: int) -> str:
    """`push.depth.full` with two levels a side: [price, contracts, orders], best first.

    Numbers go out as the tape's digits; a price that is not a number goes out as
    JSON null, the way a broken level would.
    """

    def number(text: str) -> str:
        try:
            Decimal(text)
        except InvalidOperation:
            return "null"
        return text

    step = BOOK_TICK * BOOK_SPREAD_TICKS
    bids = "[%s,%s,1],[%s,250,3]" % (number(book.bid), book.bid_qty, _shifted(book.bid, -step))
    asks = "[%s,%s,1],[%s,250,3]" % (number(book.ask), book.ask_qty, _shifted(book.ask, step))
    data = '{"asks":[%s],"bids":[%s],"version":%d}' % (asks, bids, version)
    return '{"channel":"push.depth.full","data":%s,"symbol":"%s","ts":%d}' % (data, symbol, now_ms)


def _shifted(price: str, by: Decimal) -> str:
    try:
        return str(Decimal(price) + by)
    except InvalidOperation:
        return "null"


def _spot_kline_frame(
    channel: str, symbol: str, interval: str, c: TapeCandle, interval_s: int, now_ms: int
) -> bytes:
    start = c.open_time_ms // 1000
    wrapper = PushDataV3ApiWrapper(
        channel=channel, symbol=symbol, symbolId="0" * 32, createTime=now_ms
    )
    k = wrapper.publicSpotKline
    k.interval = interval
    k.windowStart = start
    k.windowEnd = start + interval_s
    k.openingPrice, k.closingPrice = c.open, c.close
    k.highestPrice, k.lowestPrice = c.high, c.low
    k.volume, k.amount = c.volume, "0"
    return wrapper.SerializeToString()


def _futures_kline_frame(symbol: str, interval: str, c: TapeCandle, now_ms: int) -> str:
    data = '{"a":0,"c":%s,"h":%s,"interval":"%s","l":%s,"o":%s,"q":%s,"symbol":"%s","t":%d}' % (
        c.close,
        c.high,
        interval,
        c.low,
        c.open,
        c.volume,
        symbol,
        c.open_time_ms // 1000,
    )
    return '{"channel":"push.kline","data":%s,"symbol":"%s","ts":%d}' % (data, symbol, now_ms)


def _window(
    rows: tuple[TapeCandle, ...],
    q: Any,
    start_key: str,
    end_key: str,
    max_limit: int,
    default_limit: int,
    unit_ms: int,
) -> tuple[TapeCandle, ...]:
    """Candles with start <= open_time < end (MEXC's end is exclusive), oldest first."""
    limit = min(int(q.get("limit", default_limit)), max_limit)
    start = int(q[start_key]) * unit_ms if start_key in q else None
    end = int(q[end_key]) * unit_ms if end_key in q else None
    picked = tuple(
        c
        for c in rows
        if (start is None or c.open_time_ms >= start) and (end is None or c.open_time_ms < end)
    )
    return picked[:limit] if start is not None else picked[-limit:]


def _window_trades(rows: tuple[TapeTrade, ...], q: Any) -> tuple[TapeTrade, ...]:
    limit = min(int(q.get("limit", "500")), 1000)
    if "startTime" not in q:
        return rows[-limit:]
    start, end = int(q["startTime"]), int(q["endTime"])
    return tuple(t for t in rows if start <= t.time_ms <= end)[:limit]
