"""A services run's daily reports as it goes (`--reports`), as one process writes them.

The writer commits the services' events a little behind the market time it has
written for the run, and not stream by stream in market order; so a UTC day is
reported once the run's written market time is `MARGIN` past the day's end, when
every event of that day is committed. The reports are written by the report
worker process (engine.report.autowrite), never holding up the supervisor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from engine.report.autowrite import ReportWriter
from engine.report.content import day_of

MARGIN: Final = timedelta(hours=1)


def finished_days(market_start: datetime, written: datetime, reported: int) -> range:
    """The days after `reported` that are over and committed once `written` is written."""
    current = day_of(market_start, written - MARGIN)
    return range(reported + 1, current)


class DailyReports:
    def __init__(self, url: str, data_dir: Path, run_id: str, market_start: datetime) -> None:
        self.market_start = market_start
        self.reported = 0
        self.writer = ReportWriter(url, data_dir, run_id)

    def poll(self, written: datetime | None) -> list[int]:
        """Ask for the reports of the days finished since the last look."""
        if written is None:
            return []
        days = list(finished_days(self.market_start, written, self.reported))
        for day in days:
            self.writer.submit(day)
        if days:
            self.reported = days[-1]
        return days

    def close(self) -> None:
        self.writer.close()


__all__ = ["MARGIN", "DailyReports", "finished_days"]
