"""The stock nbgrader pipeline, for real, in a temporary course: generate, autograde, export.

Submissions: full marks (the solution's answers typed into the student notebook), untouched (zero),
test cells tagged `skip-execution` (zero: the trap is closed), and a correct answer that writes a
library warning to stderr inside a test cell (full marks: the other trap is closed).
"""

import csv

import pytest

from course_utils.notebooks import read_notebook
from nbgrader.utils import is_grade, is_solution
from tests.helpers import fill_answers, nbgrader
import nbformat

pytestmark = pytest.mark.pipeline

LESSON = "01_dataloader_batching"


def submit(course, student, notebook):
    folder = course / "submitted" / student / LESSON
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{LESSON}.ipynb")
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


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    from tests.helpers import copy_course

    course = copy_course(tmp_path_factory.mktemp("pipeline") / "course", [LESSON], with_release=False)
    nbgrader(course, "generate_assignment", LESSON, "--force")
    source = read_notebook(course / "solutions" / LESSON / f"{LESSON}.ipynb")
    student = read_notebook(course / "notebooks" / LESSON / f"{LESSON}.ipynb")
    submit(course, "alice", fill_answers(student, source))
    submit(course, "bob", student)
    submit(course, "carol", tag_test_cells(nbformat.from_dict(student), "skip-execution"))
    submit(course, "dave", warn_inside_answers(fill_answers(student, source)))
    nbgrader(course, "autograde", LESSON)
    nbgrader(course, "generate_feedback", LESSON)
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return course, rows


def score(rows, student):
    row = rows[student]
    return float(row["raw_score"]), float(row["max_score"])


def test_full_marks_for_the_solution_answers(graded_course):
    _, rows = graded_course
    raw, maximum = score(rows, "alice")
    assert maximum == 12 and raw == maximum


def test_zero_for_an_untouched_notebook(graded_course):
    _, rows = graded_course
    assert score(rows, "bob") == (0.0, 12.0)


def test_skip_execution_tags_earn_nothing(graded_course):
    _, rows = graded_course
    assert score(rows, "carol") == (0.0, 12.0)


def test_stderr_warning_in_a_test_cell_does_not_zero_a_correct_answer(graded_course):
    course, rows = graded_course
    assert score(rows, "dave") == (12.0, 12.0)
    graded = read_notebook(course / "autograded" / "dave" / LESSON / f"{LESSON}.ipynb")
    shown = "".join(output.get("text", "") for cell in graded.cells if cell.id == "ex3-tests"
                    for output in cell.outputs)
    assert "a library deprecation notice" in shown and "progress note" in shown, "the warning stays visible"


def test_feedback_is_written_for_every_student(graded_course):
    course, _ = graded_course
    for student in ("alice", "bob", "carol", "dave"):
        assert (course / "feedback" / student / LESSON / f"{LESSON}.html").is_file()
