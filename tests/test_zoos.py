"""Every lesson's bug zoo through the lesson's real grade cells, in one live kernel per lesson.

Each variant's cell runs after the solution's answer cells (so every other function is the
solution's), then the grade cell of its exercise runs exactly as nbgrader runs it. A correct variant
must pass; a buggy one must fail with a message whose first code is its own diagnosis. The zoos are
data (``tests/zoos/lessonNN.py``); this file is the one runner.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.diagnoses import checks_module, codes_in
from tests.helpers import answer_cell_ids, graded_cells, lesson_notebook, student_answer
from tests.zoos import Variant, Zoo, all_zoos

ZOOS = {zoo.lesson: zoo for zoo in all_zoos()}
CASES = [pytest.param(lesson, variant, id=f"{lesson[:2]}-{variant.id}")
         for lesson, zoo in ZOOS.items() for variant in zoo.variants]
CORRECT = [case for case in CASES if case.values[1].bug is None]
BUGGY = [case for case in CASES if case.values[1].bug is not None]


def errors_of(cell) -> str:
    return "\n".join(f"{output.ename}: {output.evalue}" for output in cell.outputs if output.output_type == "error")


def graded(lesson: str, folder: Path) -> dict[Variant, str]:
    """Run every variant of ``lesson``'s zoo and its grade cell in one kernel; the grade cell's errors by variant."""
    zoo = ZOOS[lesson]
    cells = {cell.id: cell for cell in lesson_notebook(lesson).cells}
    client = NotebookClient(new_notebook(), timeout=zoo.timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})

    def run(cell):
        client.nb.cells.append(cell)
        client.execute_cell(cell, len(client.nb.cells) - 1)
        return cell

    results = {}
    with client.setup_kernel():
        for cell_id in zoo.setup_cells:
            if errors_of(run(copy.deepcopy(cells[cell_id]))):
                raise RuntimeError(f"{lesson}: the setup cell {cell_id} failed: {errors_of(client.nb.cells[-1])}")
        solution = new_code_cell("\n\n".join(student_answer(cells[cell_id]) for cell_id in answer_cell_ids(lesson)))
        for variant in zoo.variants:
            run(copy.deepcopy(solution))
            run(new_code_cell(variant.source))
            results[variant] = errors_of(run(copy.deepcopy(cells[variant.exercise])))
    return results


@pytest.fixture(scope="session")
def kernel_results(tmp_path_factory):
    """``lesson -> {variant: errors}``, computed once per lesson on the worker that runs it."""
    done: dict[str, dict[Variant, str]] = {}

    def results(lesson: str) -> dict[Variant, str]:
        if lesson not in done:
            done[lesson] = graded(lesson, tmp_path_factory.mktemp(f"zoo{lesson[:2]}"))
        return done[lesson]

    return results


@pytest.mark.parametrize("lesson", sorted(ZOOS))
def test_the_zoo_meets_its_bar(lesson):
    zoo: Zoo = ZOOS[lesson]
    diagnoses = importlib.import_module(checks_module(lesson)).DIAGNOSES
    grade_ids = graded_cells(lesson)
    assert len({variant.id for variant in zoo.variants}) == len(zoo.variants), "variant names are unique"
    assert {variant.exercise for variant in zoo.variants} <= set(grade_ids)
    for grade_id in {variant.exercise for variant in zoo.buggy}:
        bugs = {variant.bug for variant in zoo.buggy if variant.exercise == grade_id}
        assert len(bugs) >= zoo.min_bugs, f"{grade_id}: {len(bugs)} distinct mistakes"
        assert len([v for v in zoo.correct if v.exercise == grade_id]) >= zoo.min_correct, grade_id
    assert {variant.bug for variant in zoo.buggy} <= set(diagnoses), "every mistake is named by the catalogue"
    assert zoo.must_name <= {variant.bug for variant in zoo.buggy}


@pytest.mark.parametrize("lesson", sorted(ZOOS))
def test_every_diagnosis_belongs_to_a_grade_cell_of_the_lesson(lesson):
    catalogue = importlib.import_module(checks_module(lesson)).CATALOGUE
    for diagnosis in catalogue:
        assert diagnosis.lesson == lesson and diagnosis.exercise in graded_cells(lesson), diagnosis.code


@pytest.mark.notebook
@pytest.mark.parametrize("lesson, variant", CORRECT)
def test_correct_variant_passes_the_grade_cell(kernel_results, lesson, variant):
    assert kernel_results(lesson)[variant] == ""


@pytest.mark.notebook
@pytest.mark.parametrize("lesson, variant", BUGGY)
def test_buggy_variant_fails_the_grade_cell_with_its_code(kernel_results, lesson, variant):
    error = kernel_results(lesson)[variant]
    assert error.startswith("CheckFailed"), error or "the grade cell passed"
    assert codes_in(error.split(": ", 1)[1])[:1] == [variant.bug], error
    for words in variant.says:
        assert words in error, (words, error)
