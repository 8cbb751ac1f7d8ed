"""Lesson 07 tells one story: the goal table, the run the notebook prints and the summary agree.

The goal table at the top holds the running example's typical run (the course's promise:
``course_utils.recipe.ORIGINAL_LOSS`` / ``ORIGINAL_ACCURACY``) and the lesson's own run. This test
executes the solution notebook on the CPU, reads the epoch table that section 2 prints, and checks
that the text's numbers are the printed ones, that the summary quotes them, and that every one is
within the distance the text claims from the typical run.
"""

from __future__ import annotations

import re

import pytest

from course_tools.notebooks import read_notebook
from course_utils.recipe import ORIGINAL_ACCURACY, ORIGINAL_LOSS
from tests.helpers import ROOT, error_outputs, execute

pytestmark = pytest.mark.notebook

LESSON = "07_epoch_loop_gpu"
CLAIMED_DISTANCE = 0.1  # "every number within 0.1 of the typical run"
NUMBER = r"(\d+\.\d+)"


def table_row(markdown: str, label: str) -> tuple[float, ...]:
    """The five numbers of the goal table's row whose label is ``label``."""
    match = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", markdown, re.MULTILINE)
    assert match, f"the goal table has no row {label!r}"
    return tuple(float(cell) for cell in match.group(1).split("|"))


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    """The solution notebook, executed on the CPU (where the lesson's run is exactly reproducible)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_DEVICE", "cpu")  # the kernel inherits it; pick_device() honours it
        notebook = execute(read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb"),
                           cwd=tmp_path_factory.mktemp("story"), timeout=300)
    assert error_outputs(notebook) == {}
    return {cell.id: cell for cell in notebook.cells}


@pytest.fixture(scope="module")
def printed_run(lesson):
    """(losses, accuracies) from the epoch table section 2 printed."""
    text = "".join(output.get("text", "") for output in lesson["run-course"].outputs)
    rows = re.findall(rf"^(\d) +\| {NUMBER} +\| {NUMBER} +\|", text, re.MULTILINE)
    assert [int(epoch) for epoch, _, _ in rows] == [1, 2, 3, 4, 5], text
    return tuple(float(loss) for _, loss, _ in rows), tuple(float(accuracy) for _, _, accuracy in rows)


def test_the_goal_table_shows_the_typical_run(lesson):
    text = lesson["title"].source
    assert table_row(text, "Training loss (mean per sample over the epoch), typical run") == ORIGINAL_LOSS
    assert table_row(text, "Validation accuracy (after the epoch), typical run") == ORIGINAL_ACCURACY


def test_the_goal_table_shows_the_run_the_notebook_prints(lesson, printed_run):
    text = lesson["title"].source
    assert table_row(text, "Training loss, this lesson's run") == printed_run[0]
    assert table_row(text, "Validation accuracy, this lesson's run") == printed_run[1]


def test_the_run_is_as_close_to_the_typical_run_as_the_text_says(lesson, printed_run):
    assert f"every number within {CLAIMED_DISTANCE:g} of the typical run" in " ".join(lesson["title"].source.split())
    printed = "".join(output.get("text", "") for output in lesson["run-course"].outputs)
    gaps = re.search(rf"largest distance to the typical run: loss {NUMBER}, accuracy {NUMBER}", printed)
    assert gaps, printed
    assert all(float(gap) <= CLAIMED_DISTANCE for gap in gaps.groups()), gaps.group(0)
    losses, accuracies = printed_run
    assert max(abs(a - b) for a, b in zip(losses, ORIGINAL_LOSS)) <= CLAIMED_DISTANCE + 0.005  # printed to 2 places
    assert max(abs(a - b) for a, b in zip(accuracies, ORIGINAL_ACCURACY)) <= CLAIMED_DISTANCE + 0.005


def test_the_summary_quotes_the_same_numbers(lesson, printed_run):
    summary = " ".join(lesson["summary"].source.split())
    losses, accuracies = printed_run
    claim = re.search(rf"training loss from {NUMBER} to {NUMBER} and the validation accuracy from {NUMBER} to "
                      rf"{NUMBER} \(section 2\): within {NUMBER} of the typical run in the goal table, {NUMBER} to "
                      rf"{NUMBER} and {NUMBER} to {NUMBER}", summary)
    assert claim, summary
    numbers = tuple(float(n) for n in claim.groups())
    assert numbers == (losses[0], losses[-1], accuracies[0], accuracies[-1], CLAIMED_DISTANCE,
                       ORIGINAL_LOSS[0], ORIGINAL_LOSS[-1], ORIGINAL_ACCURACY[0], ORIGINAL_ACCURACY[-1])
