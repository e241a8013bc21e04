"""Named SQL queries from `queries.sql`: `-- name: x` blocks loaded into a dict.

Python calls queries by name; the SQL stays in one file where it can be read,
reviewed and tried in psql as a whole.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

from engine.errors import StoreError

_NAME_LINE: Final = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split `text` at `-- name: x` lines; refuse duplicates and empty blocks."""
    queries: dict[str, str] = {}
    marks = list(_NAME_LINE.finditer(text))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        name = mark.group(1)
        body = text[mark.end() : following.start() if following else len(text)]
        sql = "\n".join(
            line for line in body.strip().splitlines() if not line.lstrip().startswith("--")
        ).strip()
        if name in queries:
            raise StoreError(f"query {name!r} is defined twice in queries.sql; rename one.")
        if not sql:
            raise StoreError(f"query {name!r} in queries.sql has no SQL; complete or remove it.")
        queries[name] = sql
    return queries


@cache
def load_queries() -> MappingProxyType[str, str]:
    """The package's queries, parsed once per process and read-only."""
    text = resources.files("engine.store").joinpath("queries.sql").read_text(encoding="utf-8")
    return MappingProxyType(parse_queries(text))
