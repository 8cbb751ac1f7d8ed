"""Lesson 02's bug zoo through the lesson's real grade cells (visible and hidden tests), in one live kernel."""

import copy

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_tools.notebooks import read_notebook
from course_utils.checks.lesson02 import DIAGNOSES
from tests.helpers import ROOT
from tests.zoo_lesson02 import BUGGY, CORRECT

pytestmark = pytest.mark.notebook

LESSON = "02_normalization"
EXERCISE_CELLS = ["ex1-scaler", "ex2-normalize-splits"]


def errors_of(cell) -> str:
    return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


@pytest.fixture(scope="module")
def grade_with_variants(tmp_path_factory):
    """Run each variant's cell, then its exercise's grade cell, in one kernel; return the errors."""
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    cells = {cell.id: cell for cell in source.cells}
    # The grade cells of buggy variants raise on purpose: keep going, and collect what they raised.
    client = NotebookClient(new_notebook(), timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("zoo02"))}})

    def run(cell):
        client.nb.cells.append(cell)
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return cell

    results = {}
    with client.setup_kernel():
        for cell_id in ["setup", *EXERCISE_CELLS]:
            assert errors_of(run(copy.deepcopy(cells[cell_id]))) == ""
        for variant in CORRECT + BUGGY:
            run(new_code_cell(variant.source))
            results[variant] = errors_of(run(copy.deepcopy(cells[variant.exercise])))
    return results


def test_the_zoo_is_big_enough():
    for exercise in ("ex1-tests", "ex2-tests"):
        mistakes = {v.bug for v in BUGGY if v.exercise == exercise}
        assert len(mistakes) >= 5, exercise
        assert sum(v.exercise == exercise for v in CORRECT) >= 2, exercise
    assert all(v.bug in DIAGNOSES and DIAGNOSES[v.bug].exercise == v.exercise for v in BUGGY)


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.exercise}-{v.name}")
def test_correct_variant_passes_the_grade_cell(grade_with_variants, variant):
    assert grade_with_variants[variant] == ""


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.exercise}-{v.name}")
def test_buggy_variant_fails_the_grade_cell_with_its_message(grade_with_variants, variant):
    error = grade_with_variants[variant]
    assert error.startswith("CheckFailed"), error or "the grade cell passed"
    assert f"[{variant.bug}]" in error.splitlines()[1], error
