"""Lesson 05's bug zoo through the lesson's real grade cells (visible checks only), in one live kernel.

Each buggy variant's grade cell must fail with CheckFailed whose first line names the variant's own
code; every correct variant must pass its grade cell. The same zoo runs fast, through the check
functions alone, in tests/test_checks_lesson05.py.
"""

from __future__ import annotations

import copy

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_tools.notebooks import read_notebook
from course_utils.checks import lesson05
from course_utils.diagnoses import codes_in
from tests.helpers import ROOT
from tests.zoo_lesson05 import BUGGY, CORRECT, GRADE_CELL, Variant

pytestmark = pytest.mark.notebook

LESSON = "05_backward"
SOLUTION_CELLS = ["ex1-gradient-check", "ex2-ce-grad", "ex3-accumulate"]


def variant_id(variant: Variant) -> str:
    return f"{variant.exercise}-{variant.name}"


def errors_of(cell) -> str:
    return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[Variant, str]:
    """Run each variant's cell, then its exercise's grade cell, in one kernel; return what each raised."""
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    cells = {cell.id: cell for cell in source.cells}
    client = NotebookClient(new_notebook(), timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("zoo"))}})

    def run(cell):
        client.nb.cells.append(cell)
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return cell

    results = {}
    with client.setup_kernel():
        run(copy.deepcopy(cells["setup"]))
        for variant in CORRECT + BUGGY:
            for cell_id in SOLUTION_CELLS:  # every variant starts from the solutions of all exercises
                run(copy.deepcopy(cells[cell_id]))
            run(new_code_cell(variant.source))
            results[variant] = errors_of(run(copy.deepcopy(cells[GRADE_CELL[variant.exercise]])))
    return results


def test_the_zoo_meets_the_issue_bar():
    """At least 5 distinct mistakes per graded exercise, 2 correct styles each, every code catalogued."""
    for exercise in GRADE_CELL:
        assert len({v.bug for v in BUGGY if v.exercise == exercise}) >= 5, exercise
        assert len([v for v in CORRECT if v.exercise == exercise]) >= 2, exercise
    assert {v.bug for v in BUGGY} <= set(lesson05.DIAGNOSES)


@pytest.mark.parametrize("variant", CORRECT, ids=variant_id)
def test_correct_variant_passes_the_grade_cell(graded, variant):
    assert graded[variant] == ""


@pytest.mark.parametrize("variant", BUGGY, ids=variant_id)
def test_buggy_variant_fails_the_grade_cell_with_its_own_code(graded, variant):
    error = graded[variant]
    assert error.startswith("CheckFailed"), error or "the grade cell passed"
    assert codes_in(error.split(": ", 1)[1])[:1] == [variant.bug], error
