"""Where a data folder's reports are written."""

from __future__ import annotations

from pathlib import Path

from engine.store import Store


def reports_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "reports"


def write_final_report(store: Store, run_id: str, data_dir: Path) -> Path:
    """The final report `claire report --final` gives, written where a completed run writes
    it: reports/RUN_ID/final.md (with .html and .json); the Markdown file's path."""
    from engine.report.autowrite import write_report_files

    written = write_report_files(store, Path(data_dir), run_id, None)
    return Path(next(w for w in written if w.endswith(".md")))


__all__ = ["reports_folder", "write_final_report"]
