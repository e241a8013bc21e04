"""Process and resource figures for an incident: the run's processes and the machine.

The run's processes are the one that holds the run (`runs/RUN_ID.process.json`)
and, for a run as separate services, every `claire engine run NAME --run RUN_ID`.
For each: pid, name, CPU share, resident memory, threads and open files. For the
machine: memory, load, the disk of the data folder, and the processes using the
most memory and CPU. A process that ends while it is measured is left out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any, Final

import psutil

TOP: Final = 10
CPU_SAMPLE_S: Final = 0.2


def service_processes(run_id: str) -> dict[str, psutil.Process]:
    """Service name -> process, for every `claire engine run NAME --run RUN_ID` alive."""
    out: dict[str, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info.get("cmdline") or []
        try:
            at = args.index("engine")
        except ValueError:
            continue
        if args[at + 1 : at + 2] != ["run"] or len(args) < at + 3:
            continue
        if "--run" in args and args[args.index("--run") + 1 : args.index("--run") + 2] == [run_id]:
            out[args[at + 2]] = proc
    return out


def _describe(proc: psutil.Process, role: str) -> dict[str, Any] | None:
    try:
        with proc.oneshot():
            memory = proc.memory_info()
            try:
                files = len(proc.open_files())
            except psutil.AccessDenied:
                files = None
            return {
                "role": role,
                "pid": proc.pid,
                "name": proc.name(),
                "status": proc.status(),
                "cpu_percent": proc.cpu_percent(None),
                "rss_bytes": memory.rss,
                "threads": proc.num_threads(),
                "open_files": files,
                "started": proc.create_time(),
                "cmdline": proc.cmdline()[:12],
            }
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


def run_processes(data_dir: Path, run_id: str | None) -> list[dict[str, Any]]:
    """The run's processes with CPU (sampled over a fifth of a second), memory, files."""
    if run_id is None:
        return []
    from engine.home.processes import read_process, same_process

    chosen: list[tuple[str, psutil.Process]] = []
    record = read_process(data_dir, run_id)
    if record is not None and same_process(record):
        with contextlib.suppress(psutil.NoSuchProcess):
            chosen.append(("run", psutil.Process(record.pid)))
    chosen += [(f"service {name}", p) for name, p in sorted(service_processes(run_id).items())]
    for _, proc in chosen:  # the first call starts the CPU measurement
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    if chosen:
        time.sleep(CPU_SAMPLE_S)
    return [d for role, p in chosen if (d := _describe(p, role)) is not None]


def top_consumers(limit: int = TOP) -> dict[str, list[dict[str, Any]]]:
    """The machine's processes using the most memory, and the most CPU (sampled)."""
    procs = list(psutil.process_iter(["pid", "name", "memory_info"]))
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    time.sleep(CPU_SAMPLE_S)
    rows: list[dict[str, Any]] = []
    for proc in procs:
        try:
            memory = proc.info.get("memory_info")
            rows.append(
                {
                    "pid": proc.pid,
                    "name": proc.info.get("name") or "",
                    "rss_bytes": memory.rss if memory else 0,
                    "cpu_percent": proc.cpu_percent(None),
                }
            )
        except psutil.Error:
            continue
    by_memory = sorted(rows, key=lambda r: r["rss_bytes"], reverse=True)[:limit]
    by_cpu = sorted(rows, key=lambda r: r["cpu_percent"], reverse=True)[:limit]
    return {"memory": by_memory, "cpu": by_cpu}


def machine(data_dir: Path) -> dict[str, Any]:
    """Memory, swap, load, CPUs, and the disk that holds the data folder."""
    where = data_dir if data_dir.exists() else data_dir.parent
    disk = shutil.disk_usage(where)
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return {
        "cpus": psutil.cpu_count(),
        "load_average": list(os.getloadavg()),
        "memory": {
            "total_bytes": memory.total,
            "available_bytes": memory.available,
            "percent": memory.percent,
        },
        "swap": {"total_bytes": swap.total, "used_bytes": swap.used, "percent": swap.percent},
        "disk": {
            "path": str(where),
            "total_bytes": disk.total,
            "free_bytes": disk.free,
            "used_percent": round(100 * (disk.total - disk.free) / disk.total, 2)
            if disk.total
            else None,
        },
    }


def largest_files(folder: Path, limit: int = TOP) -> list[dict[str, Any]]:
    """The biggest files of the data folder: what fills its disk."""
    sizes: list[tuple[int, str]] = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            try:
                sizes.append((path.stat().st_size, str(path.relative_to(folder))))
            except OSError:
                continue
    sizes.sort(reverse=True)
    return [{"path": p, "bytes": s} for s, p in sizes[:limit]]


__all__ = ["largest_files", "machine", "run_processes", "service_processes", "top_consumers"]
