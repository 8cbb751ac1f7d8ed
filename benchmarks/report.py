"""Seconds ``course report`` takes for a synthetic class: ``python benchmarks/report.py [--students 40]``.

Prints the seconds to write one lesson's report (lesson 07, mistakes drawn from its catalogue):
end to end in a fresh Python process, as ``course report LESSON`` runs (imports of matplotlib and of
the catalogue, which imports torch, included), and warm in this process (the median of a few runs);
then warm with a second lesson graded, when each lesson's page also draws the cross-lesson view
and reports/course.html is written too.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.report_class import L07, L08, random_class  # noqa: E402 - the tests' own synthetic class


def seconds(call, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeat`` calls after a first one (CPU time is what load cannot inflate)."""
    call()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def fresh_process(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``command`` run to its end in a new process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from course_tools.grade.results import save_results
    from course_tools.report import write_report
    from course_tools.report.write import write_lessons

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save_results(root, L07, random_class(args.students, L07, seed=1))
        fresh = [sys.executable, "-c", "import sys; from course_tools.report import write_report; "
                 "write_report(sys.argv[1], sys.argv[2])", str(root), L07]
        wall, cpu = fresh_process(fresh)
        print(f"one lesson, {args.students} students, fresh process (as `course report LESSON`): "
              f"{wall:.2f} s wall, {cpu:.2f} s CPU")
        wall, cpu = seconds(lambda: write_report(root, L07), args.repeat)
        print(f"one lesson, {args.students} students, warm: {wall:.2f} s wall, {cpu:.2f} s CPU")
        save_results(root, L08, random_class(args.students, L08, seed=2))
        wall, cpu = seconds(lambda: write_lessons(root), args.repeat)
        print(f"two lessons + course page, {args.students} students each, warm: {wall:.2f} s wall, {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
