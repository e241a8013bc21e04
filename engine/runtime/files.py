"""Small file and port helpers the embedded servers share."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner only, replacing any old file atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def free_port() -> int:
    """A port free right now on 127.0.0.1 (a race with another program is the caller's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
