"""Every lesson both ways: the solution passes every grade cell, the student stub passes none.

Results are read from the executed cells, as nbgrader scores them (never from `nbgrader validate`,
whose exit code is always 0).
"""

import pytest

from course_tools.notebooks import read_notebook
from tests.conftest import LESSONS
from tests.helpers import ROOT, error_outputs, execute, grade_cells

pytestmark = pytest.mark.notebook


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_runs_headless_and_passes_every_grade_cell(lesson, tmp_path):
    notebook = execute(read_notebook(ROOT / "solutions" / lesson / f"{lesson}.ipynb"), cwd=tmp_path)
    assert error_outputs(notebook) == {}
    grades = grade_cells(notebook)
    assert grades, "a lesson without grade cells grades nothing"
    assert all(score == 1.0 for score in grades.values()), grades


@pytest.mark.parametrize("lesson", LESSONS)
def test_student_notebook_passes_no_grade_cell(lesson, tmp_path):
    student = read_notebook(ROOT / "notebooks" / lesson / f"{lesson}.ipynb")
    notebook = execute(student, cwd=tmp_path)
    grades = grade_cells(notebook)
    passed = [grade_id for grade_id, score in grades.items() if score > 0]
    assert grades and not passed, f"these check cells pass on the empty stub: {passed}"
    grade_cell_ids = {cell.id for cell in notebook.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade")}
    other_errors = {cell_id: error for cell_id, error in error_outputs(notebook).items() if cell_id not in grade_cell_ids}
    unexplained = {cell_id: error for cell_id, error in other_errors.items() if not error.startswith("NotImplementedError")}
    assert not unexplained, f"cells outside the checks fail for a reason other than an empty exercise: {unexplained}"
