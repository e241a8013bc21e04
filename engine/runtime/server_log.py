"""What the embedded PostgreSQL's log and output say when it fails: the cause in the
operator's words, or the last line."""

from __future__ import annotations

from pathlib import Path
from typing import Final

# What a server log says when start-up fails for a reason outside PostgreSQL, and the
# fix in the operator's words; the first one found in the log's tail is the cause.
_START_FAILURES: Final = (
    ("No space left on device", "the disk is full (No space left on device); free space on "
     "the disk of {folder}"),
    ("Permission denied", "permission denied on a file of the server; check the owner and "
     "permissions of {folder}"),
    ("Address already in use", "its address is in use (Address already in use); stop the "
     "other server or let claire pick another port"),
    ("lock file", "another server holds its lock file (postmaster.pid) in {folder}; stop that "
     "server, or remove the file if no server runs"),
    ("Read-only file system", "the disk of {folder} is read-only (Read-only file system); "
     "mount it writable"),
    ("Cannot allocate memory", "the machine is out of memory (Cannot allocate memory); free "
     "memory"),
)  # fmt: skip


def start_failure_cause(log: str, folder: Path) -> str | None:
    """A recognised cause of a failed start in the server log's text, with its fix."""
    tail = log[-16 * 1024 :]
    for needle, cause in _START_FAILURES:
        if needle.lower() in tail.lower():
            return cause.format(folder=folder)
    return None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


__all__ = ["last_line", "start_failure_cause"]
