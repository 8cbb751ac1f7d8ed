"""The stock nbgrader pipeline, for real, in a temporary course per lesson: generate, autograde, feedback, export.

Every lesson gets a full-marks submission (the solution's answers typed into the student notebook):
every cell runs headless without an error and every grade cell passes. It also gets an untouched one:
zero points, no grade cell passes, and any other cell fails only for an exercise not yet written.
Results are read from the autograded notebooks and nbgrader's export, as nbgrader scores them (never
from `nbgrader validate`, whose exit code is always 0). Lesson 01 also gets the two grading traps: test
cells tagged `skip-execution` (zero: the trap is closed) and a correct answer that writes a library
warning to stderr inside a test cell (full marks). Lesson 07 gets a buggy loop (marks lost for that
exercise only). Each lesson is its own course, so the lessons spread over the test workers.
"""

import csv

import nbformat
import pytest
from nbgrader.utils import is_grade, is_solution

from course_tools.notebooks import read_notebook
from tests.conftest import LESSONS
from tests.helpers import copy_course, error_outputs, fill_answers, grade_cells, nbgrader
from tests.zoos import all_zoos

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
    buggy_loop = next(variant for zoo in all_zoos() if zoo.lesson == LOOP for variant in zoo.buggy
                      if variant.exercise == "ex1-tests" and variant.bug == "accumulated-gradients")
    for cell in notebook.cells:
        if cell.id == "ex1-train-one-epoch":
            cell.source = buggy_loop.source
    return notebook


def grade_lesson(course, lesson):
    """Grade ``lesson``'s submissions with stock nbgrader in a fresh course; return it and the export's rows."""
    copy_course(course, [lesson], with_release=False)
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


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """``lesson -> (course, rows)``, graded once per lesson on the worker that runs it.

    Session-wide: a worker may run other files' tests between two of one lesson's here, and a module
    fixture would then be torn down and the lesson graded again.
    """
    done = {}

    def course_of(lesson):
        if lesson not in done:
            done[lesson] = grade_lesson(tmp_path_factory.mktemp(f"pipeline{lesson[:2]}") / "course", lesson)
        return done[lesson]

    return course_of


def score(rows, student, lesson):
    row = rows[(student, lesson)]
    return float(row["raw_score"]), float(row["max_score"])


def autograded(course, student, lesson):
    return read_notebook(course / "autograded" / student / lesson / f"{lesson}.ipynb")


@pytest.mark.parametrize("lesson", LESSONS)
def test_full_marks_for_the_solution_answers(graded, lesson):
    course, rows = graded(lesson)
    raw, maximum = score(rows, "full", lesson)
    assert maximum > 0 and raw == maximum
    notebook = autograded(course, "full", lesson)
    assert error_outputs(notebook) == {}, "every cell runs headless without an error"
    grades = grade_cells(notebook)
    assert grades and all(value == 1.0 for value in grades.values()), grades


@pytest.mark.parametrize("lesson", LESSONS)
def test_zero_for_an_untouched_notebook(graded, lesson):
    course, rows = graded(lesson)
    raw, maximum = score(rows, "empty", lesson)
    assert maximum > 0 and raw == 0
    notebook = autograded(course, "empty", lesson)
    grades = grade_cells(notebook)
    passed = [grade_id for grade_id, value in grades.items() if value > 0]
    assert grades and not passed, f"these check cells pass on the empty stub: {passed}"
    grade_cell_ids = {cell.id for cell in notebook.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade")}
    unexplained = {cell_id: error for cell_id, error in error_outputs(notebook).items()
                   if cell_id not in grade_cell_ids and not error.startswith("NotImplementedError")}
    assert not unexplained, f"cells outside the checks fail for a reason other than an empty exercise: {unexplained}"


@pytest.mark.parametrize("lesson", [FIRST])
def test_skip_execution_tags_earn_nothing(graded, lesson):
    assert score(graded(lesson)[1], "skipper", lesson) == (0.0, 9.0)


@pytest.mark.parametrize("lesson", [FIRST])
def test_stderr_warning_in_a_test_cell_does_not_zero_a_correct_answer(graded, lesson):
    course, rows = graded(lesson)
    assert score(rows, "warner", lesson) == (9.0, 9.0)
    shown = "".join(output.get("text", "") for cell in autograded(course, "warner", lesson).cells
                    if cell.id == "ex3-tests" for output in cell.outputs)
    assert "a library deprecation notice" in shown and "progress note" in shown, "the warning stays visible"


@pytest.mark.parametrize("lesson", [LOOP])
def test_a_buggy_loop_loses_the_marks_of_its_exercise_only(graded, lesson):
    course, rows = graded(lesson)
    graded_notebook = autograded(course, "buggy", lesson)
    cells = grade_cells(graded_notebook)
    assert cells["ex1-tests"] == 0 and cells["ex2-tests"] == 1
    assert not any(cell_id.startswith("quiz-") for cell_id in cells), "quizzes earn no points"
    errors = "".join(o.get("evalue", "") for c in graded_notebook.cells if c.id == "ex1-tests" for o in c.outputs)
    assert "[accumulated-gradients]" in errors
    raw, maximum = score(rows, "buggy", lesson)
    assert 0 < raw <= maximum - 4


@pytest.mark.parametrize("lesson", LESSONS)
def test_feedback_is_written_for_every_submission(graded, lesson):
    course, rows = graded(lesson)
    submitted = [key for key, row in rows.items() if row["timestamp"]]
    assert len(submitted) == 2 + {FIRST: 2, LOOP: 1}.get(lesson, 0)
    for student, assignment in submitted:
        assert (course / "feedback" / student / assignment / f"{assignment}.html").is_file()
