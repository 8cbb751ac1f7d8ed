"""Lesson 08's bug zoo through the lesson's real grade cells, in one live kernel.

Every buggy loop must fail its exercise's grade cell with a message whose first line names its own
diagnosis; every correct loop, whatever its style, must pass. The distributed exercise runs on two
real gloo ranks on 127.0.0.1 for every variant.
"""

import copy

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_tools.notebooks import read_notebook
from course_utils.checks.lesson08 import DIAGNOSES
from course_utils.diagnoses import codes_in
from tests.helpers import ROOT
from tests.zoo_lesson08 import BUGGY, CORRECT, GRADE_CELL

pytestmark = pytest.mark.notebook

LESSON = "08_loop_at_scale"
SOLUTION_CELLS = ["setup", "ex1-train-one-epoch-accumulated", "ex2-fit-scheduled", "ex3-train-one-epoch-amp", "ex4-train-ddp"]


def errors_of(cell) -> str:
    return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


@pytest.fixture(scope="module")
def grade_with_variants(tmp_path_factory):
    """Run each variant's cell, then its exercise's grade cell, in one kernel; return the errors."""
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    cells = {cell.id: cell for cell in source.cells}
    client = NotebookClient(new_notebook(), timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("zoo08"))}})

    def run(cell):
        client.nb.cells.append(cell)
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return cell

    results = {}
    with client.setup_kernel():
        for cell_id in SOLUTION_CELLS:
            run(copy.deepcopy(cells[cell_id]))
        for variant in CORRECT + BUGGY:
            run(new_code_cell(variant.source))
            results[variant] = errors_of(run(copy.deepcopy(cells[GRADE_CELL[variant.function]])))
    return results


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: f"{v.function}-{v.name}")
def test_correct_variant_passes_the_grade_cell(grade_with_variants, variant):
    assert grade_with_variants[variant] == ""


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: f"{v.function}-{v.name}")
def test_buggy_variant_fails_the_grade_cell_with_its_message(grade_with_variants, variant):
    error = grade_with_variants[variant]
    assert error.startswith("CheckFailed"), error or "the grade cell passed"
    assert codes_in(error.split(": ", 1)[1])[:1] == [variant.bug], error


def test_the_zoo_is_as_large_as_the_issue_asks():
    bugs = {variant.bug for variant in BUGGY}
    assert len(bugs) >= 12 and len({(v.function, v.name) for v in BUGGY}) == len(BUGGY)
    named = [variant for variant in BUGGY if variant.bug in DIAGNOSES]
    assert len(named) >= 0.95 * len(BUGGY), "the catalogue names at least 95 % of the zoo"
    assert len(CORRECT) >= 5
    assert {variant.function for variant in CORRECT} == set(GRADE_CELL)
    issue_list = {"ddp-no-set-epoch", "ddp-no-sampler", "ddp-no-no-sync", "accum-loss-not-divided",
                  "accum-last-group-dropped", "clip-after-step", "amp-clip-scaled", "sched-per-epoch",
                  "sched-per-batch", "amp-double-step", "ddp-metrics-not-reduced", "ddp-every-rank-saves",
                  "ddp-not-wrapped", "ddp-wrapped-before-move"}
    assert issue_list <= bugs
    issue_17 = {"ddp-no-shuffle", "accum-zeroed-before-step", "clip-wrong-norm", "amp-loss-outside-autocast",
                "amp-no-update", "ddp-never-synced", "ddp-sync-positions", "clip-params-used-up"}
    assert issue_17 <= bugs
    by_value = next(v for v in BUGGY if v.name == "clip-by-value")
    assert by_value.bug == "clip-wrong-norm" and "clip_grad_value_" in by_value.source
