"""The bug zoo through lesson 07's real grade cells, in a live kernel, as a student sees each message."""

import copy

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_tools.notebooks import read_notebook
from tests.helpers import ROOT
from tests.loop_zoo import BUGGY, CORRECT

BROKEN_TRAIN = next(v for v in BUGGY if v.name == "no-zero-grad")

pytestmark = pytest.mark.notebook

LESSON = "07_epoch_loop_gpu"
GRADE_CELL = {"train_one_epoch": "ex1-tests", "evaluate": "ex2-tests", "fit": "ex3-tests"}
SOLUTION_CELLS = ["ex1-train-one-epoch", "ex2-evaluate", "ex3-fit"]


def errors_of(cell) -> str:
    return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


@pytest.fixture(scope="module")
def grade_with_variants(tmp_path_factory):
    """Run each variant's cell, then its exercise's grade cell, in one kernel; return the errors."""
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    cells = {cell.id: cell for cell in source.cells}
    # The grade cells of buggy variants raise on purpose: keep going, and collect what they raised.
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
            for cell_id in SOLUTION_CELLS:  # each variant starts from the solutions of the other exercises
                run(copy.deepcopy(cells[cell_id]))
            run(new_code_cell(variant.source))
            results[variant] = errors_of(run(copy.deepcopy(cells[GRADE_CELL[variant.function]])))
        # fit is judged on its own: the solution's fit keeps its points beside a broken train_one_epoch
        for cell_id in SOLUTION_CELLS:  # the solutions again: the last zoo variant may have been any function's
            run(copy.deepcopy(cells[cell_id]))
        run(new_code_cell(BROKEN_TRAIN.source))
        graded = run(copy.deepcopy(cells["ex3-tests"]))
        results["fit-beside-a-broken-train"] = (errors_of(graded), "".join(o.get("text", "") for o in graded.outputs))
    return results


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.function}-{v.name}")
def test_correct_variant_passes_the_grade_cell(grade_with_variants, variant):
    assert grade_with_variants[variant] == ""


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.function}-{v.name}")
def test_buggy_variant_fails_the_grade_cell_with_its_message(grade_with_variants, variant):
    error = grade_with_variants[variant]
    assert error.startswith("CheckFailed"), error or "the grade cell passed"
    assert f"[{variant.bug}]" in error.splitlines()[1]


def test_a_correct_fit_keeps_its_points_when_train_one_epoch_is_broken(grade_with_variants):
    errors, printed = grade_with_variants["fit-beside-a-broken-train"]
    assert errors == ""
    assert "Exercise 1 (train_one_epoch) still fails" in printed and "Exercise 3" in printed


@pytest.mark.parametrize("variant", [v for v in BUGGY if v.bug.endswith("crashed")], ids=lambda v: v.name)
def test_a_crash_names_the_line_of_the_learners_cell(grade_with_variants, variant):
    """Issue 17: no 'example cell' that does not exist; the message quotes the line that raised, from the cell."""
    error = grade_with_variants[variant]
    found = next(line for line in error.splitlines() if line.strip().startswith("found:"))
    changed = next(line.strip() for line in variant.source.splitlines() if line.strip() in found)
    assert f"of {variant.function}: {changed}" in found, found
    assert "example cell" not in error
