"""A local HTTP server that takes webhook notifications, as a chat service would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    port: int
    status: int = 200
    posts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "hook", query: str = "") -> str:
        return f"json://127.0.0.1:{self.port}/{path}" + (f"?{query}" if query else "")

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.02)
        with self.lock:
            return list(self.posts)


@contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1; it answers `status` to every POST."""
    state = Receiver(port=0, status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            with state.lock:
                state.paths.append(self.path)
                try:
                    state.posts.append(json.loads(body))
                except ValueError:
                    state.posts.append({"raw": body.decode(errors="replace")})
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port nothing listens on: connections to it are refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
