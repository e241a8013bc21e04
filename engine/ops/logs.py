"""The run's logs: JSON lines in rotating files in the data folder, with secrets masked.

Every record of a run goes to `DATA_DIR/logs/claire.log` (rotated at
`CLAIRE_LOG_MAX_BYTES`, keeping `CLAIRE_LOG_BACKUPS` old files) as one JSON object
a line: `ts` (UTC), `level`, `logger`, `message`, `run_id`, and the record's
structured fields (`event`, `rule`, `channel`, ...). `read_records` reads them
back in order across rotated files, for `claire logs` and incident bundles.

Secrets never reach a log: while a run logs, every handler masks the values of
the secret settings (and each part of a notification URL that could be a token)
in the message, its fields and any traceback.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from engine.config import Settings
from engine.runtime.redaction import Redactor, secret_values

LOG_NAME: Final = "claire.log"
# Attributes every LogRecord has; anything else was passed in `extra` and is kept.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("x", 0, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def log_folder(data_dir: Path) -> Path:
    return data_dir / "logs"


class RunContext(logging.Filter):
    """Stamps the run's id on every record that has none."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "run_id", None):
            record.run_id = self.run_id
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in body:
                body[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exception"] = record.exc_text
        return json.dumps(body, ensure_ascii=False)


class ErrorCounter(logging.Handler):
    """Counts the records at error level or above, for the run's session record."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.errors += 1


@contextmanager
def run_logging(
    settings: Settings,
    data_dir: Path,
    run_id: str,
    extra_secrets: Iterable[str] = (),
) -> Iterator[ErrorCounter]:
    """JSON lines of everything the run logs, and secrets masked on every handler."""
    folder = log_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        folder / LOG_NAME,
        maxBytes=settings.claire_log_max_bytes,
        backupCount=settings.claire_log_backups,
        encoding="utf-8",
    )
    handler.setFormatter(JsonFormatter())
    handler.setLevel(settings.claire_log_level.upper())
    redactor = Redactor(secret_values(settings, extra_secrets))
    context = RunContext(run_id)
    counter = ErrorCounter()
    handler.addFilter(context)
    root = logging.getLogger()
    console = list(root.handlers)
    for existing in console:
        existing.addFilter(redactor)
    handler.addFilter(redactor)
    counter.addFilter(context)
    claire = logging.getLogger("claire")
    engine = logging.getLogger("engine")
    levels = (claire.level, engine.level)
    wanted = logging.getLevelName(settings.claire_log_level.upper())
    for logger in (claire, engine):
        if logger.getEffectiveLevel() > wanted:
            logger.setLevel(wanted)
    # The run's own loggers reach the file at the chosen level; the console keeps its own.
    # The console keeps to errors during a run (the live view is the run's face there),
    # unless the root logger is at debug (`claire --debug`).
    console_levels = [h.level for h in console]
    floor = root.level if root.level <= logging.DEBUG else logging.ERROR
    for existing in console:
        existing.setLevel(max(existing.level, floor))
    root.addHandler(handler)
    root.addHandler(counter)
    try:
        yield counter
    finally:
        root.removeHandler(handler)
        root.removeHandler(counter)
        handler.close()
        for existing, level in zip(console, console_levels, strict=True):
            existing.removeFilter(redactor)
            existing.setLevel(level)
        claire.setLevel(levels[0])
        engine.setLevel(levels[1])


LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def level_at_least(name: str) -> Callable[[dict[str, Any]], bool]:
    """A filter for records at level `name` or above."""
    from engine.errors import ConfigError

    floor = LEVELS.get(name.strip().lower())
    if floor is None:
        raise ConfigError(f"--level {name!r} is not one of {', '.join(LEVELS)}.")
    return lambda record: LEVELS.get(str(record.get("level", "")).lower(), 0) >= floor


# --- reading -------------------------------------------------------------------------


def log_files(folder: Path) -> list[Path]:
    """The log files oldest first: claire.log.N ... claire.log.1, claire.log."""
    rotated = sorted(
        (p for p in folder.glob(f"{LOG_NAME}.*") if p.suffix.lstrip(".").isdigit()),
        key=lambda p: int(p.suffix.lstrip(".")),
        reverse=True,
    )
    current = folder / LOG_NAME
    return rotated + ([current] if current.exists() else [])


def parse_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "ts" in record else None


def _matches(record: dict[str, Any], since: datetime | None, run_id: str | None) -> bool:
    if run_id is not None and record.get("run_id") != run_id:
        return False
    if since is None:
        return True
    try:
        return datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00")) >= since
    except ValueError:
        return False


def read_records(
    folder: Path, since: datetime | None = None, run_id: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every record in the folder's log files in order; lines that are not JSON are skipped."""
    for path in log_files(folder):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                record = parse_line(line)
                if record is not None and _matches(record, since, run_id):
                    yield record


def follow_records(
    folder: Path,
    since: datetime | None = None,
    run_id: str | None = None,
    poll_s: float = 0.5,
    stop: Any = None,
) -> Iterator[dict[str, Any]]:
    """Like `tail -f`: what is there, then each new record; survives rotation."""
    yield from read_records(folder, since, run_id)
    path = folder / LOG_NAME
    position = path.stat().st_size if path.exists() else 0
    inode = path.stat().st_ino if path.exists() else None
    buffer = ""
    while stop is None or not stop():
        if not path.exists():
            time.sleep(poll_s)
            continue
        info = path.stat()
        if info.st_ino != inode or info.st_size < position:
            inode, position, buffer = info.st_ino, 0, ""  # rotated: the new file from its start
        if info.st_size > position:
            with path.open(encoding="utf-8", errors="replace") as f:
                f.seek(position)
                buffer += f.read()
                position = f.tell()
            *complete, buffer = buffer.split("\n")
            for line in complete:
                record = parse_line(line)
                if record is not None and _matches(record, since, run_id):
                    yield record
        else:
            time.sleep(poll_s)


def format_record(record: dict[str, Any]) -> str:
    """One line for people: time, level, logger, message, then the other fields."""
    known = {"ts", "level", "logger", "message", "exception"}
    fields = " ".join(f"{k}={v}" for k, v in record.items() if k not in known)
    line = f"{record.get('ts', '')} {str(record.get('level', '')).upper():8} "
    line += f"{record.get('logger', '')}: {record.get('message', '')}"
    if fields:
        line += f"  {fields}"
    if record.get("exception"):
        line += "\n" + str(record["exception"])
    return line


def parse_since(text: str, now: datetime) -> datetime:
    """`10m`, `2h`, `1d`, `30s` ago, or an ISO 8601 time (UTC if no offset)."""
    from datetime import timedelta

    from engine.errors import ConfigError

    value = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:].lower() in units and value[:-1].isdigit():
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1].lower()])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is not a duration like 10m, 2h, 1d or a time like "
            "2026-01-10T12:00:00Z."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = [
    "ErrorCounter",
    "JsonFormatter",
    "Redactor",
    "follow_records",
    "format_record",
    "log_files",
    "log_folder",
    "parse_since",
    "read_records",
    "run_logging",
    "secret_values",
]
