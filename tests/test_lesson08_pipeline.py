"""Lesson 08 through the stock nbgrader pipeline: full marks, zero for the stub, and a buggy DDP loop
that loses exercise 4's points only (its feedback names the mistake)."""

import csv

import nbformat
import pytest

from course_tools.notebooks import read_notebook
from tests.helpers import copy_course, fill_answers, grade_cells, nbgrader
from tests.zoos.lesson08 import ZOO

pytestmark = pytest.mark.pipeline

LESSON = "08_loop_at_scale"
BUGGY_DDP = next(v for v in ZOO.buggy if v.id == "ex4-tests-no-set-epoch")


def submit(course, student, notebook):
    folder = course / "submitted" / student / LESSON
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{LESSON}.ipynb")
    (folder / "timestamp.txt").write_text("2026-11-21 09:00:00.000000 UTC")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("pipeline08") / "course", [LESSON], with_release=False)
    nbgrader(course, "generate_assignment", LESSON, "--force")
    source = read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb")
    student = read_notebook(course / "notebooks" / LESSON / f"{LESSON}.ipynb")
    submit(course, "full", fill_answers(student, source))
    submit(course, "empty", student)
    buggy = fill_answers(student, source)
    next(c for c in buggy.cells if c.id == "ex4-train-ddp").source = BUGGY_DDP.source
    submit(course, "buggy", buggy)
    nbgrader(course, "autograde", LESSON)
    nbgrader(course, "generate_feedback", LESSON)
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return course, rows


def score(rows, student):
    return float(rows[student]["raw_score"]), float(rows[student]["max_score"])


def test_full_empty_and_buggy_submissions_are_graded_right(graded):
    course, rows = graded
    assert score(rows, "full") == (13.0, 13.0)
    assert score(rows, "empty") == (0.0, 13.0)
    assert score(rows, "buggy") == (9.0, 13.0)
    autograded = read_notebook(course / "autograded" / "buggy" / LESSON / f"{LESSON}.ipynb")
    assert grade_cells(autograded) == {"ex1-tests": 1.0, "ex2-tests": 1.0, "ex3-tests": 1.0, "ex4-tests": 0.0}
    errors = "".join(o.get("evalue", "") for c in autograded.cells if c.id == "ex4-tests" for o in c.outputs)
    assert "[ddp-no-set-epoch]" in errors
    for student in ("full", "empty", "buggy"):
        assert (course / "feedback" / student / LESSON / f"{LESSON}.html").is_file()
