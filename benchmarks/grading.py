"""Seconds per notebook to grade a synthetic class of lesson 01: bare execution, local jobs, a Dask cluster.

Run as root on Linux with bubblewrap installed: ``python benchmarks/grading.py [--students 40]``.
Each way grades a fresh copy of the same class with the ``course`` command itself:

- bare execution: nbclient, one notebook after another, no sandbox, no repair, no nbgrader;
- ``course grade 01_dataloader_batching --jobs 1`` and ``--jobs 2``;
- ``course grade 01_dataloader_batching --cluster tcp://127.0.0.1:PORT`` on a ``distributed.LocalCluster``
  of 2 worker processes (one thread each) over loopback TCP.

It prints seconds per notebook for each and the ratios: grading overhead against bare execution
(target under 1.3x) and the speed-up from 2 workers (target at least 1.7x on 2 free cores).
``--ways`` picks some of them (e.g. ``--ways bare,jobs1``).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LESSON = "01_dataloader_batching"
WAYS = ("bare", "jobs1", "jobs2", "cluster2")
sys.path.insert(0, str(ROOT))


def make_class(course: Path, students: int) -> nbformat.NotebookNode:
    """A course root with ``students`` correct submissions of lesson 01; return the answered notebook."""
    from tests.helpers import copy_course, fill_answers  # the tests' own way to answer a lesson

    copy_course(course, [LESSON])
    answered = fill_answers(nbformat.read(course / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4),
                            nbformat.read(course / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4))
    for number in range(students):
        folder = course / "submitted" / f"student{number:03d}" / LESSON
        folder.mkdir(parents=True)
        nbformat.write(answered, folder / f"{LESSON}.ipynb")
    return answered


def bare(notebook: nbformat.NotebookNode, runs: int) -> float:
    """Seconds per notebook for plain headless execution, one after another."""
    env = dict(os.environ, OMP_NUM_THREADS="1")  # as in the sandbox, so both measure the same kernel work
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(runs):
            NotebookClient(nbformat.from_dict(notebook), timeout=120, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": scratch}}).execute(env=env)
    return (time.perf_counter() - start) / runs


def course_grade(students: int, *options: str) -> float:
    """Seconds per notebook for ``course grade LESSON *options`` on a fresh class; checks every grade."""
    with tempfile.TemporaryDirectory() as folder:
        course = Path(folder) / "course"
        make_class(course, students)
        command = [sys.executable, "-m", "course_tools.cli", "grade", LESSON, *options]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=course, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(command[2:])} failed:\n{tail}")
        _check_grades(course, students)
        return seconds / students


def _check_grades(course: Path, students: int) -> None:
    """Every student graded, with full marks: a benchmark of a run that went wrong measures nothing."""
    try:
        from course_tools.grade.report import GRADES_FILE
    except ImportError:  # the pipeline before the split wrote grades.csv
        GRADES_FILE = "grades.csv"
    with open(course / GRADES_FILE, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("assignment", LESSON) == LESSON]
    full = [r for r in rows if r.get("max_score") and float(r["score"]) == float(r["max_score"])]
    if len(rows) != students or len(full) != students:
        raise RuntimeError(f"expected {students} students with full marks, found {len(full)} of {len(rows)} rows")


def on_cluster(students: int, workers: int = 2) -> float:
    """Seconds per notebook for ``course grade --cluster`` on a LocalCluster of ``workers`` processes."""
    from distributed import LocalCluster

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        return course_grade(students, "--cluster", cluster.scheduler_address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, from {', '.join(WAYS)}")
    args = parser.parse_args(argv)
    ways = [w for w in args.ways.split(",") if w]
    unknown = sorted(set(ways) - set(WAYS))
    if unknown:
        parser.error(f"unknown ways: {', '.join(unknown)}")
    from course_tools.sandbox import sandbox_problem

    problem = sandbox_problem()
    if problem and set(ways) - {"bare"}:
        print(f"cannot benchmark course grade here: {problem}")
        return 1
    seconds: dict[str, float] = {}
    if "bare" in ways:
        with tempfile.TemporaryDirectory() as folder:
            answered = make_class(Path(folder) / "course", 1)
        seconds["bare"] = bare(answered, min(args.students, 10))
    if "jobs1" in ways:
        seconds["jobs1"] = course_grade(args.students, "--jobs", "1")
    if "jobs2" in ways:
        seconds["jobs2"] = course_grade(args.students, "--jobs", "2")
    if "cluster2" in ways:
        seconds["cluster2"] = on_cluster(args.students)
    labels = {"bare": "bare execution", "jobs1": "course grade --jobs 1", "jobs2": "course grade --jobs 2",
              "cluster2": "course grade --cluster (2 workers)"}
    print(f"{args.students} students x lesson 01 ({os.cpu_count()} CPU cores)")
    for way, value in seconds.items():
        line = f"  {labels[way]:<36} {value:6.2f} s/notebook"
        if way == "jobs1" and "bare" in seconds:
            line += f"   overhead {value / seconds['bare']:4.2f}x bare (target < 1.3x)"
        if way in ("jobs2", "cluster2") and "jobs1" in seconds:
            line += f"   speed-up {seconds['jobs1'] / value:4.2f}x over --jobs 1 (target >= 1.7x)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
