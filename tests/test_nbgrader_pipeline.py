"""The stock nbgrader pipeline, for real, in a temporary course: generate, autograde, feedback, export.

Every lesson gets a full-marks submission (the solution's answers typed into the student notebook)
and an untouched one (zero). Lesson 01 also gets the two grading traps: test cells tagged
`skip-execution` (zero: the trap is closed) and a correct answer that writes a library warning to
stderr inside a test cell (full marks). Lesson 07 gets a buggy loop (marks lost for that exercise only).
"""

import csv

import nbformat
import pytest
from nbgrader.utils import is_grade, is_solution

from course_tools.notebooks import read_notebook
from tests.conftest import LESSONS
from tests.helpers import copy_course, fill_answers, grade_cells, nbgrader
from tests.zoos.lesson07 import NO_ZERO_GRAD

pytestmark = pytest.mark.pipeline

FIRST, LOOP = "01_dataloader_batching", "07_epoch_loop_gpu"


def submit(course, student, lesson, notebook):
    folder = course / "submitted" / student / lesson
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{lesson}.ipynb")
    (folder / "timestamp.txt").write_text("2026-11-21 09:00:00.000000 UTC")


def tag_test_cells(notebook, tag):
    for cell in notebook.cells:
        if is_grade(cell) and not is_solution(cell):
            cell.metadata.setdefault("tags", []).append(tag)
    return notebook


def warn_inside_answers(notebook):
    """A correct notebook whose answer warns (to stderr) whenever the test cells call it."""
    for cell in notebook.cells:
        if is_solution(cell) and "def batch_sizes" in cell.source:
            cell.source = cell.source.replace(
                '    """The size of every batch in one epoch over `n_samples` samples."""',
                '    """The size of every batch in one epoch over `n_samples` samples."""\n'
                '    import sys, warnings\n'
                '    warnings.warn("a library deprecation notice", FutureWarning)\n'
                '    print("progress note", file=sys.stderr)',
            )
    return notebook


def with_buggy_loop(notebook):
    for cell in notebook.cells:
        if cell.id == "ex1-train-one-epoch":
            cell.source = NO_ZERO_GRAD
    return notebook


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("pipeline") / "course", LESSONS, with_release=False)
    for lesson in LESSONS:
        nbgrader(course, "generate_assignment", lesson, "--force")
        source = read_notebook(course / "solutions" / lesson / f"{lesson}.ipynb")
        student = read_notebook(course / "notebooks" / lesson / f"{lesson}.ipynb")
        submit(course, "full", lesson, fill_answers(student, source))
        submit(course, "empty", lesson, student)
        if lesson == FIRST:
            submit(course, "skipper", lesson, tag_test_cells(nbformat.from_dict(student), "skip-execution"))
            submit(course, "warner", lesson, warn_inside_answers(fill_answers(student, source)))
        if lesson == LOOP:
            submit(course, "buggy", lesson, with_buggy_loop(fill_answers(student, source)))
        nbgrader(course, "autograde", lesson)
        nbgrader(course, "generate_feedback", lesson)
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as handle:
        rows = {(row["student_id"], row["assignment"]): row for row in csv.DictReader(handle)}
    return course, rows


def score(rows, student, lesson):
    row = rows[(student, lesson)]
    return float(row["raw_score"]), float(row["max_score"])


@pytest.mark.parametrize("lesson", LESSONS)
def test_full_marks_for_the_solution_answers(graded_course, lesson):
    raw, maximum = score(graded_course[1], "full", lesson)
    assert maximum > 0 and raw == maximum


@pytest.mark.parametrize("lesson", LESSONS)
def test_zero_for_an_untouched_notebook(graded_course, lesson):
    raw, maximum = score(graded_course[1], "empty", lesson)
    assert maximum > 0 and raw == 0


def test_skip_execution_tags_earn_nothing(graded_course):
    assert score(graded_course[1], "skipper", FIRST) == (0.0, 9.0)


def test_stderr_warning_in_a_test_cell_does_not_zero_a_correct_answer(graded_course):
    course, rows = graded_course
    assert score(rows, "warner", FIRST) == (9.0, 9.0)
    graded = read_notebook(course / "autograded" / "warner" / FIRST / f"{FIRST}.ipynb")
    shown = "".join(output.get("text", "") for cell in graded.cells if cell.id == "ex3-tests"
                    for output in cell.outputs)
    assert "a library deprecation notice" in shown and "progress note" in shown, "the warning stays visible"


def test_a_buggy_loop_loses_the_marks_of_its_exercise_only(graded_course):
    course, rows = graded_course
    graded = read_notebook(course / "autograded" / "buggy" / LOOP / f"{LOOP}.ipynb")
    cells = grade_cells(graded)
    assert cells["ex1-tests"] == 0 and cells["ex2-tests"] == 1
    assert not any(cell_id.startswith("quiz-") for cell_id in cells), "quizzes earn no points"
    errors = "".join(o.get("evalue", "") for c in graded.cells if c.id == "ex1-tests" for o in c.outputs)
    assert "[accumulated-gradients]" in errors
    raw, maximum = score(rows, "buggy", LOOP)
    assert 0 < raw <= maximum - 4


def test_feedback_is_written_for_every_submission(graded_course):
    course, rows = graded_course
    submitted = [key for key, row in rows.items() if row["timestamp"]]
    assert len(submitted) == 2 * len(LESSONS) + 3
    for student, lesson in submitted:
        assert (course / "feedback" / student / lesson / f"{lesson}.html").is_file()
