"""A `.env` file checked line by line before its settings are used.

python-dotenv skips a line it cannot parse with a warning, and the setting on
that line silently keeps its default: a run with the wrong capital or limits
that exits 0. Here every such line is an error that names it, without echoing
its text (it may hold a secret):

- a line that is not `NAME=value` (garbage, a stray word, `=value`);
- a quote that is never closed, or a quoted value running over several lines;
- a file that is not UTF-8 text (binary data), or cannot be read.

A UTF-8 byte-order mark is fine; comments, blank lines and `export NAME=value` too.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Final

from dotenv.parser import Binding, parse_stream

from engine.errors import ConfigError

_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _line_of(binding: Binding) -> int:
    """The line where the binding's text starts (the parser counts blank lines before it)."""
    text = binding.original.string
    return binding.original.line + text[: len(text) - len(text.lstrip())].count("\n")


def check_env_file(path: Path) -> None:
    """Raise ConfigError naming the first line of `path` that is not a clean setting."""
    if not path.exists():
        return
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; settings go in a file of NAME=value lines.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror}); fix its permissions.") from None
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL byte")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a text file (binary data, or not UTF-8); write it as UTF-8 text "
            "with one NAME=value per line."
        ) from None
    for binding in parse_stream(io.StringIO(text)):
        line = _line_of(binding)
        if binding.error:
            raise ConfigError(
                f"line {line} of {path} is not NAME=value (a stray line, or a quote that is "
                "never closed); fix or remove it."
            )
        if binding.key is not None and binding.value is None:
            # Not echoed: a lone word on a line may well be a pasted secret.
            raise ConfigError(
                f"line {line} of {path} has no '=' (a stray word?); write NAME=value or "
                "remove the line."
            )
        if binding.value is not None and "\n" in binding.value:
            name = binding.key if binding.key and _NAME.match(binding.key) else "a setting"
            raise ConfigError(
                f"line {line} of {path} starts a quoted value of {name} that runs over "
                "several lines (a quote never closed?); close it on the same line."
            )
