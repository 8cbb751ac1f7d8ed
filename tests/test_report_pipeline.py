"""``course report`` on a class that ``course grade`` really graded: lesson 07 in sandboxed kernels.

Three students: one correct, one who never zeroes the gradients, one who evaluates in train mode.
The report must find exactly those diagnoses, through the grading pipeline's own results file.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from course_tools.grade.kernel import RunSettings
from course_tools.grade.pipeline import Options, grade
from course_tools.notebooks import read_notebook
from course_tools.report import write_report
from course_tools.sandbox import sandbox_problem
from tests.helpers import copy_course, fill_answers, missing_tool
from tests.zoos.lesson07 import ZOO

pytestmark = pytest.mark.pipeline

LESSON = "07_epoch_loop_gpu"
SOLUTION_CELL = {"ex1-tests": "ex1-train-one-epoch", "ex2-tests": "ex2-evaluate"}
STUDENTS = {"correct": None, "no-zero-grad": "no-zero-grad", "no-eval-mode": "no-eval-mode"}


def test_the_report_of_a_class_graded_by_course_grade(tmp_path):
    problem = sandbox_problem()
    if problem is not None:
        missing_tool(f"no sandbox on this machine: {problem}")
    root = copy_course(tmp_path / "course", [LESSON])
    release = read_notebook(root / "notebooks" / LESSON / f"{LESSON}.ipynb")
    source = read_notebook(root / "solutions" / LESSON / f"{LESSON}.ipynb")
    for student, bug in STUDENTS.items():
        notebook = fill_answers(release, source)
        if bug:
            variant = next(v for v in ZOO.buggy if v.name == bug)
            cell = next(c for c in notebook.cells
                        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == SOLUTION_CELL[variant.exercise])
            cell.source = variant.source
        folder = root / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / f"{LESSON}.ipynb")

    grade(root, LESSON, Options(jobs=2, settings=RunSettings(cell_timeout=60, notebook_timeout=240)))
    page = write_report(root, LESSON)
    data = json.loads(page.with_suffix(".json").read_text())

    assert (data["scores"]["graded"], data["scores"]["full_marks"]) == (3, 1), data["not_graded"]
    exercises = {e["grade_id"]: e for e in data["exercises"]}
    assert [(d["code"], d["students"]) for d in exercises["ex1-tests"]["diagnoses"]] == [("accumulated-gradients", 1)]
    assert [(d["code"], d["students"]) for d in exercises["ex2-tests"]["diagnoses"]] == [("eval-mode", 1)]
    assert {c["code"] for c in data["confusions"]} == {"accumulated-gradients", "eval-mode"}
    assert [s["student"] for s in data["lowest"]] and data["unknown_codes"] == []
    assert "gradients accumulated across batches" in page.read_text()
