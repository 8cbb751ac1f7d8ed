"""Wall time and peak memory of executing each lesson notebook headless, as a student's kernel would.

Run with ``make benchmark`` (or ``python benchmarks/lesson_notebooks.py [--repeat N]``). Targets per
lesson: under 8 s of wall time including the kernel start, and under 1 GiB of peak kernel memory
(Binder gives 2 GB). Prints one row per lesson and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nbclient import NotebookClient

from course_tools.notebooks import read_notebook
from course_tools.release import find_lessons, lesson_notebook

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 8.0
TARGET_MIB = 1024.0


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a process's resident memory (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def run_once(path: Path) -> tuple[float, float]:
    """Execute the notebook in a fresh kernel; return (wall seconds, peak kernel MiB)."""
    notebook = read_notebook(path)
    with tempfile.TemporaryDirectory() as scratch:
        client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": scratch}})
        start = time.perf_counter()
        with client.setup_kernel():
            pid = client.km.provisioner.pid
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
            peak = peak_rss_mib(pid)
        return time.perf_counter() - start, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per lesson; the median is reported")
    parser.add_argument("--folder", default="solutions", choices=["solutions", "notebooks"])
    args = parser.parse_args(argv)
    print(f"{'lesson':<28} {'wall s (median)':>16} {'peak MiB (max)':>15}  target")
    missed = 0
    for lesson in find_lessons(ROOT):
        runs = [run_once(lesson_notebook(ROOT, lesson, args.folder)) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        ok = wall < TARGET_SECONDS and peak < TARGET_MIB
        missed += not ok
        print(f"{lesson:<28} {wall:>16.2f} {peak:>15.0f}  {'met' if ok else 'MISSED'} "
              f"(< {TARGET_SECONDS:.0f} s, < {TARGET_MIB:.0f} MiB)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
