"""Lesson 04's bug zoo: every mistake named by its own code, every correct variant passing.

Two ways: fast, through the check functions of course_utils.checks.lesson04 in this process; and
through the lesson's real grade cells (visible and hidden tests of the solution notebook) in one live
kernel, as nbgrader runs them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from torch import nn
from torch.nn import functional as F

from course_tools.notebooks import read_notebook
from course_utils.checks import CheckFailed
from course_utils.checks import lesson04
from course_utils.diagnoses import codes_in
from tests.helpers import ROOT
from tests.zoo_lesson04 import BUGGY, CORRECT, Variant

LESSON = "04_loss"
GRADE_CELLS = ("ex1-values-tests", "ex1-stability-tests", "ex1-weights-smoothing-tests", "ex2-tests")
CHECKS: dict[str, Callable[[dict, int], None]] = {
    "ex1-values-tests": lambda names, seed: lesson04.check_cross_entropy(names["cross_entropy"], seed=seed),
    "ex1-stability-tests": lambda names, seed: lesson04.check_cross_entropy_stability(names["cross_entropy"], seed=seed),
    "ex1-weights-smoothing-tests":
        lambda names, seed: lesson04.check_cross_entropy_weights_smoothing(names["cross_entropy"], seed=seed),
    "ex2-tests": lambda names, seed: lesson04.check_choose_loss(names["choose_loss"], seed=seed),
}
# The grade cells of each function: a correct variant passes all of its function's cells.
CELLS_OF = {"ex1-values-tests": GRADE_CELLS[:3], "ex2-tests": GRADE_CELLS[3:]}
SEEDS = (1, 2, 3)


def variant_id(variant: Variant) -> str:
    return f"{variant.exercise}-{variant.name}"


def defined_by(variant: Variant) -> dict:
    names = {"torch": torch, "nn": nn, "F": F}
    exec(variant.source, names)  # noqa: S102 - the zoo's own student cells
    return names


def test_the_zoo_meets_the_issue_bar():
    """At least 5 distinct mistakes per graded exercise, and correct variants in several styles."""
    for grade_id in GRADE_CELLS:
        assert len({v.bug for v in BUGGY if v.exercise == grade_id}) >= 5, grade_id
    for grade_id in CELLS_OF:
        assert len([v for v in CORRECT if v.exercise == grade_id]) >= 2, grade_id
    assert {v.bug for v in BUGGY} <= set(lesson04.DIAGNOSES)


def test_every_diagnosis_belongs_to_a_grade_cell_of_the_lesson():
    for diagnosis in lesson04.CATALOGUE:
        assert diagnosis.lesson == LESSON and diagnosis.exercise in GRADE_CELLS, diagnosis.code


@pytest.mark.parametrize("variant", CORRECT, ids=variant_id)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_variant_passes_its_checks(variant, seed):
    for grade_id in CELLS_OF[variant.exercise]:
        CHECKS[grade_id](defined_by(variant), seed)


@pytest.mark.parametrize("variant", BUGGY, ids=variant_id)
@pytest.mark.parametrize("seed", SEEDS)
def test_buggy_variant_is_named_by_its_check(variant, seed):
    with pytest.raises(CheckFailed) as caught:
        CHECKS[variant.exercise](defined_by(variant), seed)
    assert codes_in(str(caught.value))[:1] == [variant.bug], str(caught.value)


def errors_of(cell) -> str:
    return "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


@pytest.fixture(scope="module")
def graded_variants(tmp_path_factory):
    """Run each variant's cell, then the grade cells it must pass or fail, in one kernel; return the errors."""
    source = read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb")
    cells = {cell.id: cell for cell in source.cells}
    client = NotebookClient(new_notebook(), timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("zoo04"))}})

    def run(cell):
        client.nb.cells.append(cell)
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return cell

    results = {}
    with client.setup_kernel():
        run(copy.deepcopy(cells["setup"]))
        for variant in CORRECT + BUGGY:
            run(new_code_cell(variant.source))
            grade_ids = CELLS_OF[variant.exercise] if variant.bug is None else [variant.exercise]
            results[variant] = "\n".join(errors_of(run(copy.deepcopy(cells[grade_id]))) for grade_id in grade_ids).strip()
    return results


@pytest.mark.notebook
@pytest.mark.parametrize("variant", CORRECT, ids=variant_id)
def test_correct_variant_passes_the_grade_cell(graded_variants, variant):
    assert graded_variants[variant] == ""


@pytest.mark.notebook
@pytest.mark.parametrize("variant", BUGGY, ids=variant_id)
def test_buggy_variant_fails_the_grade_cell_with_its_message(graded_variants, variant):
    error = graded_variants[variant]
    assert error.startswith("CheckFailed"), error or "the grade cell passed"
    assert codes_in(error.split(": ", 1)[1])[:1] == [variant.bug], error


def test_the_first_loss_numbers_in_the_text_are_what_the_course_model_gives():
    """Section 2 states the first loss of the course's model over 100 seeds, and lesson 07's 1.2: measured here."""
    from dataclasses import replace

    from course_utils.data import make_course_data
    from course_utils.recipe import DEFAULT_RECIPE, default_model

    features, targets = make_course_data()
    with torch.no_grad():
        losses = sorted(F.cross_entropy(default_model(replace(DEFAULT_RECIPE, seed=seed))(features / 100), targets).item()
                        for seed in range(100))
        seed_31 = F.cross_entropy(default_model(DEFAULT_RECIPE)(features / 100), targets).item()
    text = "\n".join(cell.source for cell in read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb").cells
                     if cell.cell_type == "markdown")
    stated = [f"{sum(losses) / len(losses):.2f} on average", f"from {losses[0]:.2f} to {losses[-1]:.2f}",
              f"between {losses[5]:.2f} and {losses[94]:.2f}", f"is {seed_31:.2f}"]
    for phrase in stated:
        assert phrase in text, phrase
    assert "about **1.2**" in text
