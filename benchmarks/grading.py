"""Seconds per notebook to grade a synthetic class of lesson 01: bare execution vs ``course grade``.

Run as root on Linux with bubblewrap installed: ``python benchmarks/grading.py [--students 40]``.
Prints seconds per notebook for bare execution (nbclient, one after another, no sandbox, no
nbgrader), for ``course grade --jobs 1`` and ``--jobs 2``, and the ratios. Targets: grading
overhead under 1.3x bare execution, and at least 1.7x from 2 jobs on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_tools.grading import grade
from course_tools.notebooks import read_notebook
from course_tools.sandbox import sandbox_problem

ROOT = Path(__file__).resolve().parents[1]
LESSON = "01_dataloader_batching"
sys.path.insert(0, str(ROOT))
from tests.helpers import fill_answers  # noqa: E402 - the tests' own way to answer a lesson


def make_class(course: Path, students: int) -> nbformat.NotebookNode:
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "notebooks"):
        shutil.copytree(ROOT / folder / LESSON, course / folder / LESSON)
    answered = fill_answers(read_notebook(course / "notebooks" / LESSON / f"{LESSON}.ipynb"),
                            read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb"))
    for number in range(students):
        folder = course / "submitted" / f"student{number:03d}" / LESSON
        folder.mkdir(parents=True)
        nbformat.write(answered, folder / f"{LESSON}.ipynb")
    return answered


def bare(notebook: nbformat.NotebookNode, runs: int) -> float:
    os.environ["OMP_NUM_THREADS"] = "1"  # as in the sandbox, so both measure the same kernel work
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(runs):
            NotebookClient(nbformat.from_dict(notebook), timeout=120, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": scratch}}).execute()
    return (time.perf_counter() - start) / runs


def graded(students: int, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        course = Path(folder) / "course"
        make_class(course, students)
        start = time.perf_counter()
        grade(course, LESSON, jobs=jobs)
        return (time.perf_counter() - start) / students


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    args = parser.parse_args(argv)
    problem = sandbox_problem()
    if problem:
        print(f"cannot benchmark course grade here: {problem}")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        answered = make_class(Path(folder) / "course", 1)
    per_bare = bare(answered, min(args.students, 10))
    per_one = graded(args.students, 1)
    per_two = graded(args.students, 2)
    print(f"{args.students} students x lesson 01")
    print(f"  bare execution          {per_bare:6.2f} s/notebook")
    print(f"  course grade --jobs 1   {per_one:6.2f} s/notebook   overhead {per_one / per_bare:4.2f}x bare (target < 1.3x)")
    print(f"  course grade --jobs 2   {per_two:6.2f} s/notebook   speed-up {per_one / per_two:4.2f}x from 2 jobs (target >= 1.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
