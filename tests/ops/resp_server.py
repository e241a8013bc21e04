"""A tiny server that speaks RESP (Redis's protocol) on a real socket, for the Redis check."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self


def _read_command(conn: socket.socket) -> list[str] | None:
    data = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        lines = data.split(b"\r\n")
        if not lines[0].startswith(b"*"):
            continue
        count = int(lines[0][1:])
        if len(lines) >= 1 + 2 * count:
            return [lines[2 + 2 * i].decode() for i in range(count)]


class RespServer:
    """Answers PING with PONG; with `password`, only after AUTH."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.commands: list[list[str]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                authed = self.password is None
                while (command := _read_command(conn)) is not None:
                    self.commands.append(command)
                    name = command[0].upper()
                    if name == "AUTH":
                        authed = command[-1] == self.password
                        conn.sendall(b"+OK\r\n" if authed else b"-WRONGPASS invalid password\r\n")
                    elif name == "PING":
                        conn.sendall(
                            b"+PONG\r\n" if authed else b"-NOAUTH Authentication required.\r\n"
                        )
