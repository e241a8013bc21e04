"""The web view of a run: one page, its JSON and a stream of updates (Starlette).

- `GET /` the page; `GET /static/...` its script, styles and the vendored chart library;
- `GET /api/view` the whole view as JSON; `GET /api/stream` server-sent events: the
  whole view first, then an update whenever the run writes (a new snapshot, fill or
  state), at most every `POLL_S` seconds after it;
- `GET /health` for a container's health check.

One `Hub` asks the database, however many pages are open: it polls a cheap
fingerprint of the run and builds the view once per change, then hands the same
text to every page. Updates carry only the equity points that are new.

Read-only: no route changes anything. With a token (needed off 127.0.0.1) every
request needs it, as `Authorization: Bearer TOKEN`, or once as `?token=TOKEN`,
which sets a cookie for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.web.view import ViewSource

log = logging.getLogger("claire.web")

POLL_S: Final = 0.25  # how often the hub looks for a change
REFRESH_S: Final = 5.0  # the view is rebuilt at least this often (ages, health, clocks)
KEEPALIVE_S: Final = 15.0
COOKIE: Final = "claire_web_token"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Hub:
    """Builds the view once per change and sends it to every open page."""

    def __init__(self, source: ViewSource, poll_s: float = POLL_S) -> None:
        self.source = source
        self.poll_s = poll_s
        self.view: dict[str, Any] | None = None
        self.seq = 0
        self._full_text: tuple[int, str] | None = None
        self._pages: set[asyncio.Queue[str]] = set()
        self._changed = asyncio.Event()
        self._fingerprint: tuple[Any, ...] | None = None
        self._built_at = 0.0

    @property
    def pages(self) -> int:
        return len(self._pages)

    def full_text(self) -> str:
        assert self.view is not None
        if self._full_text is None or self._full_text[0] != self.seq:
            self._full_text = (self.seq, _json({"kind": "full", "seq": self.seq, **self.view}))
        return self._full_text[1]

    async def first(self) -> dict[str, Any]:
        if self.view is None:
            await self.step(force=True)
        assert self.view is not None
        return self.view

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception as exc:  # a database that is away for a moment: say so, go on
                log.warning("the web view could not read the run: %s", exc)
            await asyncio.sleep(self.poll_s)

    async def step(self, force: bool = False) -> None:
        fingerprint = await anyio.to_thread.run_sync(self.source.fingerprint)
        stale = time.monotonic() - self._built_at >= REFRESH_S
        if not force and fingerprint == self._fingerprint and not stale:
            return
        detected = time.time()
        same_run = self.view is not None and fingerprint[0] == self._fingerprint_run()
        since = _last_time(self.view) if same_run else None
        fresh = await anyio.to_thread.run_sync(self.source.view, since)
        self._fingerprint, self._built_at = fingerprint, time.monotonic()
        self.seq += 1
        if since is not None and self.view is not None and fresh.get("panels"):
            added = fresh["panels"]["equity_curve"]
            update = {"kind": "update", "seq": self.seq, "detected_at": detected, **fresh}
            curve = _merged(self.view["panels"]["equity_curve"], added)
            fresh["panels"] = {**fresh["panels"], "equity_curve": curve}
            self.view = fresh
            text = _json(update)
        else:
            self.view = fresh
            text = _json({"kind": "full", "seq": self.seq, "detected_at": detected, **fresh})
        self._send(text)

    def _fingerprint_run(self) -> Any:
        return self._fingerprint[0] if self._fingerprint else None

    def _send(self, text: str) -> None:
        for page in list(self._pages):
            try:
                page.put_nowait(text)
            except asyncio.QueueFull:  # a page that does not keep up starts over
                self._pages.discard(page)
                page.put_nowait("")

    def join(self) -> asyncio.Queue[str]:
        page: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._pages.add(page)
        return page

    def leave(self, page: asyncio.Queue[str]) -> None:
        self._pages.discard(page)


def _merged(curve: list[dict[str, Any]], added: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`curve` up to the first new point, then the new points (which start at the last
    time already held, so that time's points come again)."""
    if not added:
        return curve
    first = datetime.fromisoformat(str(added[0]["time"]))
    cut = len(curve)
    while cut and datetime.fromisoformat(str(curve[cut - 1]["time"])) >= first:
        cut -= 1
    return curve[:cut] + added


def _last_time(view: dict[str, Any] | None) -> datetime | None:
    if not view or not view.get("panels") or not view["panels"]["equity_curve"]:
        return None
    return datetime.fromisoformat(str(view["panels"]["equity_curve"][-1]["time"]))


class Guard:
    """The token (when one is set) on every request, and the security headers (ASGI,
    so a stream of updates passes through untouched)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.token is not None and request.url.path != "/health":
            refused = self._refused(request)
            if refused is not None:
                await refused(scope, receive, send)
                return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, secured)

    def _refused(self, request: Request) -> Response | None:
        assert self.token is not None
        given = request.query_params.get("token")
        if given is not None and _same(given, self.token):
            # The token leaves the address bar at once; a cookie carries it on.
            response: Response = RedirectResponse(request.url.path or "/", status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return _secure(response)
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        cookie = request.cookies.get(COOKIE)
        if any(v is not None and _same(v, self.token) for v in (bearer, cookie)):
            return None
        return _secure(
            PlainTextResponse(
                "401: this view needs its token (Authorization: Bearer, or ?token=).",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        )


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(source: ViewSource, token: str | None = None, poll_s: float = POLL_S) -> Starlette:
    """The web view of `source`'s run; `token` None serves it without one (127.0.0.1)."""
    from importlib import resources

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    folder = resources.files("engine.web")
    templates = Environment(
        loader=FileSystemLoader(str(folder.joinpath("templates"))),
        autoescape=select_autoescape(["html"]),
    )
    hub = Hub(source, poll_s)

    async def page(request: Request) -> Response:
        view = await hub.first()
        html = templates.get_template("view.html").render(
            run_id=view["status"].get("run_id") or "no run yet",
            data_dir=view["status"].get("data_dir", ""),
        )
        return HTMLResponse(html)

    async def api_view(request: Request) -> Response:
        await hub.first()
        return Response(hub.full_text(), media_type="application/json")

    async def stream(request: Request) -> Response:
        await hub.first()
        queue = hub.join()

        async def events() -> AsyncIterator[str]:
            try:
                yield f"retry: 1000\ndata: {hub.full_text()}\n\n"
                while True:
                    try:
                        text = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if not text:  # dropped for falling behind: the page reconnects
                        return
                    yield f"data: {text}\n\n"
            finally:
                hub.leave(queue)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "web", "pages": hub.pages})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/view", api_view),
            Route("/api/stream", stream),
            Route("/health", health),
            Mount("/static", StaticFiles(directory=str(folder.joinpath("static"))), name="static"),
        ],
        middleware=[Middleware(Guard, token=token)],
        lifespan=lifespan,
    )
    app.state.hub = hub
    return app


def serve(
    source: ViewSource,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the view until SIGINT or SIGTERM."""
    import uvicorn

    app = create_app(source, token)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            on_ready(url)

        server.startup = startup  # type: ignore[method-assign]
    # uvicorn stops cleanly on SIGTERM, then raises it again for the previous handler:
    # ours ends `serve` normally, so the caller closes the database (and stops an
    # embedded server nobody else uses) instead of dying with it open.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stopped) if main else None
    try:
        server.run()
    except _Stopped:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


__all__ = ["CSP", "Hub", "create_app", "serve"]
