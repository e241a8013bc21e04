"""Where a data folder's reports are written."""

from __future__ import annotations

from pathlib import Path

from engine.store import Store


def reports_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "reports"


def write_final_report(store: Store, run_id: str, data_dir: Path) -> Path:
    """`claire report --final` as Markdown in the data folder's reports/."""
    from engine.report.final import final_report, to_markdown

    folder = reports_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}-final.md"
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(to_markdown(final_report(store, run_id)), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["reports_folder", "write_final_report"]
