"""Wall time and peak memory of executing each lesson notebook headless, as a student's kernel would.

Run with ``make benchmark`` (or ``python benchmarks/lesson_notebooks.py [--repeat N] [--lesson NN_slug]``).
Targets per lesson: at most 8 s of wall time from the kernel start to the end of the last cell
(lesson 08, the loop at scale: 30 s), and under 1 GiB of peak kernel memory (Binder gives 2 GB).
Prints a table, one row per lesson, with the kernel's CPU time (which hardly depends on what else the
machine runs) and the machine's load at the start (wall times on a busy machine are not
comparable), and exits 1 if a target is missed or a notebook fails."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course_tools.notebooks import read_notebook
from course_tools.release import find_lessons, lesson_notebook

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 8.0
TARGET_SECONDS_BY_LESSON = {"08": 30.0}  # lesson number -> its own wall-time target
TARGET_MIB = 1024.0


def target_seconds(lesson: str) -> float:
    """The wall-time target of a lesson (``NN_slug``)."""
    return TARGET_SECONDS_BY_LESSON.get(lesson[:2], TARGET_SECONDS)


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a process's resident memory (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(path: Path) -> tuple[float, float, float]:
    """Execute the notebook in a fresh kernel; return (wall seconds, peak kernel MiB, kernel CPU seconds).

    The kernel's CPU time hardly depends on what else the machine runs, unlike the wall time.
    """
    notebook = read_notebook(path)
    with tempfile.TemporaryDirectory() as scratch:
        client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": scratch}})
        start = time.perf_counter()
        with client.setup_kernel():
            pid = client.km.provisioner.pid
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
            # The clock stops after the last cell: a student waits for the kernel start and the cells,
            # not for the shutdown (which jupyter_client may stretch by a second or more).
            wall = time.perf_counter() - start
            peak, cpu = peak_rss_mib(pid), cpu_seconds(pid)
        return wall, peak, cpu


def _machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{cores} CPU(s), load average {load} (1, 5, 15 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per lesson; the median is reported")
    parser.add_argument("--folder", default="solutions", choices=["solutions", "notebooks"])
    parser.add_argument("--lesson", action="append", help="only this lesson (NN_slug); may be repeated")
    args = parser.parse_args(argv)
    lessons = args.lesson or find_lessons(ROOT)
    print(f"lesson notebooks ({args.folder}/), median of {args.repeat} run(s); machine: {_machine()}")
    header = f"{'lesson':<28} {'wall s':>7} {'kernel CPU s':>12} {'peak MiB':>9}  {'target':<18} result"
    print(header)
    print("-" * len(header))
    missed = 0
    for lesson in lessons:
        limit = target_seconds(lesson)
        target = f"<= {limit:.0f} s, < {TARGET_MIB:.0f} MiB"
        try:
            runs = [run_once(lesson_notebook(ROOT, lesson, args.folder)) for _ in range(args.repeat)]
        except CellExecutionError as error:
            missed += 1
            reason = str(error).strip().splitlines()[-1][:60]
            print(f"{lesson:<28} {'-':>7} {'-':>12} {'-':>9}  {target:<18} FAILED: {reason}")
            continue
        wall = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        ok = wall <= limit and peak < TARGET_MIB
        missed += not ok
        print(f"{lesson:<28} {wall:>7.2f} {cpu:>12.2f} {peak:>9.0f}  {target:<18} {'met' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
