"""Reports a run writes as it goes: each UTC day's once market time passes 00:00, and the
final one when it ends, into `DATA_DIR/reports/RUN_ID/` (`day-01.md`, `.html`, `.json`,
..., `final.*`).

A report is built from the database alone, after the batch holding its day's last
events has been committed, in a worker process of its own: drawing charts never
slows the replay or the live pipeline, and a report that fails is logged, never
fatal to the run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_all
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Final

from engine.runtime.orphans import end_with_parent

if TYPE_CHECKING:
    from engine.store import Store

log = logging.getLogger(__name__)

FORMATS: Final = ("md", "html", "json")


def report_folder(data_dir: Path, run_id: str) -> Path:
    return data_dir / "reports" / run_id


def stem(day: int | None) -> str:
    return "final" if day is None else f"day-{day:02d}"


def write_report(
    url: str, data_dir: str, run_id: str, day: int | None, formats: tuple[str, ...] = FORMATS
) -> list[str]:
    """Build one report from the database and write its files, each whole or not at all."""
    from engine.store import Store

    store = Store.open(url, migrate=False, max_connections=1)
    try:
        return write_report_files(store, Path(data_dir), run_id, day, formats)
    finally:
        store.close()


def write_report_files(
    store: Store, data_dir: Path, run_id: str, day: int | None, formats: tuple[str, ...] = FORMATS
) -> list[str]:
    """The report of `day` (None: the final one) into reports/RUN_ID/, in each format."""
    from engine.report.content import build_report
    from engine.report.render import render

    report = build_report(store, run_id, day)
    folder = report_folder(data_dir, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = folder / f"{stem(day)}.{fmt}"
        scratch = target.with_suffix(f".{fmt}.tmp")
        scratch.write_text(render(report, fmt), encoding="utf-8")
        os.replace(scratch, target)
        written.append(str(target))
    return written


def missing_days(data_dir: Path, run_id: str, days: range) -> list[int]:
    """The days of `days` whose Markdown or HTML report is not in the folder."""
    folder = report_folder(data_dir, run_id)
    return [
        d
        for d in days
        if not (folder / f"{stem(d)}.md").exists() or not (folder / f"{stem(d)}.html").exists()
    ]


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker_started(parent: int) -> None:
    """The report worker (and with it multiprocessing's resource tracker) ends with `parent`."""
    end_with_parent(parent, signal.SIGKILL, kernel=False)  # started from a duty's thread


def _submit(*args: object) -> Future[list[str]]:
    """Run `write_report` in the process's report worker, started once and kept warm.

    One worker for the whole process: its imports (matplotlib, Jinja2, the engine) are
    paid once, however many runs a process makes; a worker that died is replaced.
    """
    global _pool
    with _pool_lock:
        for _ in range(2):
            if _pool is None:
                _pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_started,
                    initargs=(os.getpid(),),
                )
            try:
                return _pool.submit(write_report, *args)  # type: ignore[arg-type]
            except BrokenProcessPool:
                _pool = None
        raise BrokenProcessPool("the report worker could not be started")


class ReportWriter:
    """Writes reports in the report worker process, in the order asked."""

    def __init__(self, url: str, data_dir: Path, run_id: str) -> None:
        self._url = url  # a secret: it goes to the worker, never to a log
        self.data_dir = data_dir
        self.run_id = run_id
        self._futures: list[tuple[int | None, Future[list[str]]]] = []
        self.written: list[str] = []
        self.failed: list[str] = []

    def submit(self, day: int | None) -> None:
        future = _submit(self._url, str(self.data_dir), self.run_id, day, FORMATS)
        self._futures.append((day, future))

    def close(self, timeout_s: float = 600.0) -> None:
        """Wait for every report asked for and log what was written and what failed.

        The run is over by now, so this process helps: it takes the reports the worker
        has not started yet, newest first, while the worker goes on from the oldest.
        """
        if not self._futures:
            return
        here: dict[int, list[str] | BaseException] = {}
        while True:
            index = next(
                (
                    i
                    for i in reversed(range(len(self._futures)))
                    if i not in here and self._futures[i][1].cancel()
                ),
                None,
            )
            if index is None:
                break
            try:
                here[index] = write_report(
                    self._url, str(self.data_dir), self.run_id, self._futures[index][0]
                )
            except Exception as exc:  # logged below like the worker's failures
                here[index] = exc
        wait_all([f for i, (_, f) in enumerate(self._futures) if i not in here], timeout=timeout_s)
        for index, (day, future) in enumerate(self._futures):
            name = stem(day)
            if index in here:
                outcome = here[index]
            elif not future.done():
                self.failed.append(name)
                log.error(
                    f"report {name} of {self.run_id} took longer than {timeout_s:g} s; "
                    "write it with `claire report`",
                    extra={"event": "report_failed", "report": name},
                )
                continue
            else:
                error = future.exception()
                outcome = error if error is not None else future.result()
            if isinstance(outcome, BaseException):
                self.failed.append(name)
                log.error(
                    f"report {name} of {self.run_id} could not be written: "
                    f"{type(outcome).__name__}: {outcome}",
                    extra={"event": "report_failed", "report": name},
                )
            else:
                self.written.extend(outcome)
                log.info(f"wrote report {name}", extra={"event": "report_written", "report": name})
        self._futures = []


def write_reports_after(url: str, data_dir: Path, run_id: str) -> ReportWriter:
    """After a run whose processes wrote none (one process per service): the report of
    every day market time has passed (as one process writes them, so not the last one)
    not in the folder yet, then the final one. Returns the writer, closed."""
    from engine.report.content import days_so_far
    from engine.store import Store

    store = Store.open(url, migrate=False, max_connections=1)
    try:
        run = store.get_run(run_id)
        days = days_so_far(store, run) if run is not None else 0
    finally:
        store.close()
    writer = ReportWriter(url, data_dir, run_id)
    for day in missing_days(data_dir, run_id, range(1, days)):
        writer.submit(day)
    writer.submit(None)
    writer.close()
    return writer
