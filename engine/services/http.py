"""The HTTP face every service shares: `GET /health`, `GET /status`, `GET /metrics`.

- `/health`: `{"status": "ok", "service": ..., "version": ...}`, or 503 with the
  reasons (bus unreachable, database unreachable, consumer lag over its limit, no
  market data) when a check fails.
- `/status`: the service's own figures as JSON (state, lag per stream, last event
  time, counters).
- `/metrics`: Prometheus text from the service's own registry (`prometheus-client`).

It runs in a daemon thread beside the service's loop and never touches its state:
checks and figures are callables the service hands in.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("claire.services.http")

Check = Callable[[], str | None]  # None when healthy, else the reason
STOP_POLL_S: Final = 0.05  # how soon the server sees it is asked to stop (a run's end waits)


def claire_version() -> str:
    try:
        return version("claire-de-binare")
    except PackageNotFoundError:
        return "unknown"


class HealthServer:
    def __init__(
        self,
        service: str,
        port: int,
        registry: CollectorRegistry,
        checks: dict[str, Check],
        status: Callable[[], dict[str, Any]],
        host: str = "127.0.0.1",
    ) -> None:
        self.service = service
        self.registry = registry
        self.checks = checks
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    code, body = outer.health()
                    self._send(code, "application/json", json.dumps(body).encode())
                elif path == "/status":
                    self._send(200, "application/json", json.dumps(outer.status()).encode())
                elif path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(outer.registry))
                else:
                    self._send(404, "application/json", b'{"error":"not found"}')

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:  # taken: serve on a free port rather than not at all
            log.warning("port %d is not free (%s); serving %s on a free port", port, exc, service)
            self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(STOP_POLL_S,),
            name=f"http-{service}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def health(self) -> tuple[int, dict[str, Any]]:
        reasons = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:  # a failing check is a reason, not a crash
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                reasons[name] = problem
        body: dict[str, Any] = {
            "status": "ok" if not reasons else "unhealthy",
            "service": self.service,
            "version": claire_version(),
        }
        if reasons:
            body["reasons"] = reasons
        return (200 if not reasons else 503), body

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
