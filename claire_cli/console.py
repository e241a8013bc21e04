"""Consoles for what claire prints: wrapped for a terminal, whole lines for everything else.

Output that goes to a file or a pipe is for reuse: a path, a URL or an error
sentence split over two lines cannot be copied or grepped. So when a stream is
not a terminal, nothing wraps. The consoles are made per call, because the
streams (and whether they are terminals) can change under a test runner.

rich is imported on the first thing printed, so `claire --help` never pays for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

UNWRAPPED_WIDTH = 100_000


def escape(text: str) -> str:
    """`text` with rich markup made literal."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _console(stream: TextIO, stderr: bool) -> Console:
    from rich.console import Console

    terminal = stream.isatty()
    if terminal:
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=UNWRAPPED_WIDTH)


def out() -> Console:
    return _console(sys.stdout, stderr=False)


def err() -> Console:
    return _console(sys.stderr, stderr=True)
