"""How a run ended, as the commands that started it print it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.kernel.pipeline import RunSummary
from engine.store import RunStatus


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: flush, record the stop, shut down cleanly."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: RunStatus
    summary: RunSummary
    data_dir: Path
    database: str  # redacted URL
    resumed_from: int  # market events already done before this process started
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    speed: str | None = None  # replay speed as given (and kept on resume)
    warnings: tuple[str, ...] = ()
    stop_signal: int | None = None  # set when Ctrl-C or SIGTERM stopped the run
    data_source: str = ""
    http_port: int | None = None  # where the run served /health and /metrics (None: off)

    @property
    def stopped(self) -> bool:
        return self.status is RunStatus.STOPPED


__all__ = ["RunOutcome", "Terminated"]
